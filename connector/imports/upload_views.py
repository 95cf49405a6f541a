"""Occurrences sent in a file: upload, preview, apply (as the catalog's file upload,
connector/sources/views.py, with the same cap on the body)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from connector.imports import upload as uploads
from connector.imports.models import OccurrenceUpload
from connector.web.uploads import MULTIPART_OVERHEAD_BYTES, cap_uploads, declared_body_length
from tenants.http import WorkspaceRequest
from tenants.models import Role
from tenants.views import workspace_view

MAX_UPLOAD_BODY_BYTES = uploads.MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES


class OccurrenceUploadForm(forms.Form):
    file = forms.FileField(
        label="File of occurrences",
        help_text=(
            f"JSON lines or CSV, UTF-8, up to {uploads.MAX_UPLOAD_BYTES // (1024 * 1024)} MB "
            f"and {uploads.MAX_ROWS:,} occurrences."
        ),
        widget=forms.ClearableFileInput(
            attrs={"accept": ".jsonl,.ndjson,.json,.csv,application/x-ndjson,text/csv"}
        ),
    )


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
        too_large = uploads.UploadRejected(uploads.TOO_LARGE)
        return _upload_page(request, OccurrenceUploadForm(), too_large, 413)
    return _upload_form(request)


def _upload_page(
    request: WorkspaceRequest,
    form: OccurrenceUploadForm,
    rejected: uploads.UploadRejected | None,
    status: int,
) -> HttpResponse:
    return render(
        request,
        "imports/upload.html",
        {
            "form": form,
            "rejected": rejected,
            "csv_example": uploads.CSV_EXAMPLE,
            "jsonl_example": uploads.JSONL_EXAMPLE,
        },
        status=status,
    )


@csrf_protect
def _upload_form(request: WorkspaceRequest) -> HttpResponse:
    form = OccurrenceUploadForm(request.POST or None, request.FILES or None)
    if request.upload_cap.stopped:  # type: ignore[attr-defined]
        too_large = uploads.UploadRejected(uploads.TOO_LARGE)
        return _upload_page(request, OccurrenceUploadForm(), too_large, 413)
    rejected = None
    if request.method == "POST" and form.is_valid():
        file = form.cleaned_data["file"]
        try:
            file_format, rows = uploads.parse_upload(filename=file.name, data=file.read())
        except uploads.UploadRejected as exc:
            rejected = exc
        else:
            pending = uploads.upload_create(
                actor=request.user, filename=file.name, file_format=file_format, rows=rows
            )
            return redirect(
                "imports:upload_preview",
                slug=request.workspace.slug,
                occurrence_upload_id=pending.pk,
            )
    return _upload_page(request, form, rejected, 400 if request.method == "POST" else 200)


@workspace_view(minimum_role=Role.ADMIN)
def upload_preview(request: WorkspaceRequest, occurrence_upload_id: int) -> HttpResponse:
    pending = get_object_or_404(OccurrenceUpload.objects.all(), pk=occurrence_upload_id)
    return render(
        request,
        "imports/upload_preview.html",
        {"upload": pending, "preview": uploads.preview(pending)},
    )


@require_POST
@workspace_view(minimum_role=Role.ADMIN)
def upload_apply(request: WorkspaceRequest, occurrence_upload_id: int) -> HttpResponse:
    pending = get_object_or_404(OccurrenceUpload.objects.all(), pk=occurrence_upload_id)
    # The lines the person chose to skip ("Apply the 14 valid rows, skipping ..."); a
    # value that is not a list of line numbers is no choice, so it is refused.
    skip_lines = uploads.posted_lines(request.POST.get("skip_lines"))
    try:
        applied = uploads.upload_apply(upload=pending, skip_lines=skip_lines)
    except uploads.UploadAlreadyApplied as exc:
        messages.info(request, str(exc))
        return redirect("imports:status", slug=request.workspace.slug)
    except uploads.UploadHasErrors as exc:
        messages.error(request, str(exc))
        return redirect(
            "imports:upload_preview", slug=request.workspace.slug, occurrence_upload_id=pending.pk
        )
    messages.success(request, f"{pending.filename}: {applied.message}")
    return redirect("imports:status", slug=request.workspace.slug)
