"""Workspace pages for the event catalog's ways in: file upload and API keys."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from connector.sources import services
from connector.sources import upload as uploads
from connector.sources.forms import ApiKeyForm, UploadForm
from connector.sources.models import ApiKey, CatalogUpload
from connector.web.uploads import MULTIPART_OVERHEAD_BYTES, cap_uploads, declared_body_length
from tenants.http import WorkspaceRequest
from tenants.models import Role
from tenants.views import workspace_view

MAX_UPLOAD_BODY_BYTES = uploads.MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES


# The CSRF check reads the body, so it runs in _upload_form, once the cap is in place
# (Django's pattern for a view's own upload handlers).
@csrf_exempt
def upload(request: HttpRequest, slug: str) -> HttpResponse:
    request.upload_cap = cap_uploads(request, max_file_bytes=uploads.MAX_UPLOAD_BYTES)  # type: ignore[attr-defined]
    return _upload(request, slug=slug)


@workspace_view(minimum_role=Role.ADMIN)
def _upload(request: WorkspaceRequest) -> HttpResponse:
    if request.method == "POST" and declared_body_length(request) > MAX_UPLOAD_BODY_BYTES:
        # Refused unread. Nothing changes, so there is no CSRF token to check either.
        return _upload_page(request, UploadForm(), uploads.UploadRejected(uploads.TOO_LARGE), 413)
    return _upload_form(request)


def _upload_page(request, form, rejected, status) -> HttpResponse:
    return render(
        request,
        "sources/upload.html",
        {"form": form, "rejected": rejected, "csv_example": uploads.CSV_EXAMPLE},
        status=status,
    )


@csrf_protect
def _upload_form(request: WorkspaceRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.upload_cap.stopped:  # type: ignore[attr-defined]
        return _upload_page(request, UploadForm(), uploads.UploadRejected(uploads.TOO_LARGE), 413)
    rejected = None
    if request.method == "POST" and form.is_valid():
        file = form.cleaned_data["file"]
        try:
            file_format, rows = uploads.parse_upload(filename=file.name, data=file.read())
        except uploads.UploadRejected as exc:
            rejected = exc
        else:
            pending = services.upload_create(
                actor=request.user, filename=file.name, file_format=file_format, rows=rows
            )
            return redirect("sources:preview", slug=request.workspace.slug, upload_id=pending.pk)
    return _upload_page(request, form, rejected, 400 if request.method == "POST" else 200)


@workspace_view(minimum_role=Role.ADMIN)
def upload_preview(request: WorkspaceRequest, upload_id: int) -> HttpResponse:
    pending = get_object_or_404(CatalogUpload.objects.all(), pk=upload_id)
    return render(
        request,
        "sources/preview.html",
        {"upload": pending, "preview": uploads.preview(pending)},
    )


@require_POST
@workspace_view(minimum_role=Role.ADMIN)
def upload_apply(request: WorkspaceRequest, upload_id: int) -> HttpResponse:
    pending = get_object_or_404(CatalogUpload.objects.all(), pk=upload_id)
    # The lines the person chose to skip ("Apply the 14 valid rows, skipping ..."); a
    # value that is not a list of line numbers is no choice, so it is refused below.
    skip_lines = uploads.posted_lines(request.POST.get("skip_lines"))
    try:
        applied = services.upload_apply(actor=request.user, upload=pending, skip_lines=skip_lines)
    except (services.UploadAlreadyApplied, services.UploadHasErrors) as exc:
        messages.error(request, str(exc))
        return redirect("sources:preview", slug=request.workspace.slug, upload_id=pending.pk)
    counts = services.counts_of(applied.results)
    messages.success(
        request,
        " ".join(
            part
            for part in (
                f"{pending.filename} applied: {counts['created']} added, "
                f"{counts['updated']} changed, {counts['unchanged']} unchanged.",
                applied.skipped,
            )
            if part
        ),
    )
    return redirect("sources:preview", slug=request.workspace.slug, upload_id=pending.pk)


def _api_keys_page(request, *, form=None, new_key=None, status=200) -> HttpResponse:
    return render(
        request,
        "sources/api_keys.html",
        {
            "form": form or ApiKeyForm(),
            "keys": ApiKey.objects.order_by("revoked_at", "-created_at"),
            "new_key": new_key,
        },
        status=status,
    )


@never_cache  # the page can carry a freshly created key: no cache may keep it
@workspace_view(minimum_role=Role.ADMIN)
def api_keys(request: WorkspaceRequest) -> HttpResponse:
    if request.method != "POST":
        return _api_keys_page(request)
    form = ApiKeyForm(request.POST)
    if form.is_valid():
        try:
            api_key, raw_key = services.api_key_create(
                actor=request.user, name=form.cleaned_data["name"]
            )
        except ValidationError as exc:
            form.add_error("name", exc)
        else:
            # Rendered, not redirected: the raw key must never sit in a session or cookie.
            return _api_keys_page(request, new_key={"key": api_key, "raw": raw_key})
    return _api_keys_page(request, form=form, status=400)


@require_POST
@workspace_view(minimum_role=Role.ADMIN)
def api_key_revoke(request: WorkspaceRequest, key_id: int) -> HttpResponse:
    api_key = get_object_or_404(ApiKey.objects.all(), pk=key_id)
    services.api_key_revoke(actor=request.user, api_key=api_key)
    messages.success(request, f"API key {api_key.name} is revoked.")
    return redirect("sources:api_keys", slug=request.workspace.slug)
