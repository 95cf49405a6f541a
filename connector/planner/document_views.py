"""Metrics as code in the browser: import a metrics file (upload or paste), see its
problems by place or a summary, then add its events and create its plan, which the
ordinary review page shows and applies; and download the workspace's file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from connector.planner.actions import PlanAction
from connector.planner.document import (
    Document,
    DocumentError,
    DocumentInvalid,
    document_export,
    document_parse,
    document_plan,
    document_plan_create,
    document_refresh,
    plan_summary,
)
from connector.web.uploads import MULTIPART_OVERHEAD_BYTES, cap_uploads, declared_body_length
from tenants.http import WorkspaceRequest
from tenants.models import Role
from tenants.views import workspace_view

# The summary page carries the file in a form field to the next step, and Django
# refuses form fields past DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB): larger files go
# through the command or the API (4 MB).
MAX_PAGE_DOCUMENT_BYTES = 2 * 1024 * 1024
MAX_BODY_BYTES = MAX_PAGE_DOCUMENT_BYTES + MULTIPART_OVERHEAD_BYTES
TOO_LARGE = (
    f"The file is larger than {MAX_PAGE_DOCUMENT_BYTES // (1024 * 1024)} MB. Import it with "
    "`python manage.py metrics apply` or POST /api/v1/metrics/apply instead."
)
# Rows listed on the summary; the review page shows them all.
SUMMARY_ROWS = 50


class DocumentForm(forms.Form):
    file = forms.FileField(
        label="Metrics file",
        required=False,
        help_text="YAML, UTF-8, up to 2 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".yaml,.yml,application/yaml,text/yaml"}),
    )
    text = forms.CharField(
        label="Or paste it here",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false", "class": "code"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        file, text = data.get("file"), data.get("text") or ""
        if file and text.strip():
            raise forms.ValidationError("Upload a file or paste its text, not both.")
        if not file and not text.strip():
            raise forms.ValidationError("Upload a metrics file, or paste its text.")
        if file:
            if file.size > MAX_PAGE_DOCUMENT_BYTES:
                raise forms.ValidationError(TOO_LARGE)
            raw = file.read()
            try:
                data["document_text"] = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError("The file is not UTF-8 text.") from None
        else:
            if len(text.encode()) > MAX_PAGE_DOCUMENT_BYTES:
                raise forms.ValidationError(TOO_LARGE)
            data["document_text"] = text
        return data


def _page(
    request: WorkspaceRequest,
    form: DocumentForm,
    *,
    errors: list[DocumentError] | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request, "metrics/document_import.html", {"form": form, "errors": errors}, status=status
    )


# The CSRF check reads the body, so it runs in _import_form once the cap is in place
# (as the catalog's upload does, connector/sources/views.py).
@csrf_exempt
def document_import(request: HttpRequest, slug: str) -> HttpResponse:
    request.upload_cap = cap_uploads(request, max_file_bytes=MAX_PAGE_DOCUMENT_BYTES)  # type: ignore[attr-defined]
    return _document_import(request, slug=slug)


@workspace_view(minimum_role=Role.ADMIN)
def _document_import(request: WorkspaceRequest) -> HttpResponse:
    if request.method == "POST" and declared_body_length(request) > MAX_BODY_BYTES:
        # Refused unread: nothing changes, so there is no CSRF token to check either.
        return _page(request, DocumentForm(), errors=[DocumentError("", TOO_LARGE)], status=413)
    return _import_form(request)


@csrf_protect
def _import_form(request: WorkspaceRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request, DocumentForm())
    if request.upload_cap.stopped:  # type: ignore[attr-defined]
        return _page(request, DocumentForm(), errors=[DocumentError("", TOO_LARGE)], status=413)
    form = DocumentForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, form, status=400)
    text = form.cleaned_data["document_text"]
    return _checked(request, text, form, _summary_page)


def _checked(
    request: WorkspaceRequest,
    text: str,
    form: DocumentForm,
    then: Callable[[WorkspaceRequest, str, Document], HttpResponse],
) -> HttpResponse:
    """`then` with the parsed file, or the import page with the file's problems."""
    try:
        document = document_parse(text)
        return then(request, text, document)
    except DocumentInvalid as exc:
        return _page(request, form, errors=exc.errors, status=400)


def _summary_page(request: WorkspaceRequest, text: str, document: Document) -> HttpResponse:
    note = document_refresh(document)  # as the review page does, which shows it next
    plan, to_add = document_plan(document)
    summary = plan_summary(plan, to_add, note=note)
    rows = sorted(summary["metrics"], key=lambda row: PlanAction.ORDER.index(row["action"]))
    return render(
        request,
        "metrics/document_summary.html",
        {
            "document_text": text,
            "summary": summary,
            "counts": [(name, n) for name, n in summary["counts"]["metrics"].items() if n],
            "group_counts": [(name, n) for name, n in summary["counts"]["groups"].items() if n],
            "rows": rows[:SUMMARY_ROWS],
            "more_rows": max(0, len(rows) - SUMMARY_ROWS),
            "to_add": to_add,
        },
    )


@require_POST
@workspace_view(minimum_role=Role.ADMIN)
def document_import_plan(request: WorkspaceRequest) -> HttpResponse:
    """Add the file's missing events and create its plan; the review page shows it.
    The file comes back from the summary page and is checked again: the catalog or
    the metrics may have changed since."""
    text = request.POST.get("document", "")
    form = DocumentForm(initial={"text": text})
    if len(text.encode()) > MAX_PAGE_DOCUMENT_BYTES:
        return _page(request, form, errors=[DocumentError("", TOO_LARGE)], status=413)
    return _checked(request, text, form, _create_plan)


def _create_plan(request: WorkspaceRequest, text: str, document: Document) -> HttpResponse:
    plan = document_plan_create(document=document, actor=request.user, via="metrics file (page)")
    return redirect("planner:plan", slug=request.workspace.slug, plan_id=plan.pk)


@require_GET
@workspace_view()
def document_export_view(request: WorkspaceRequest) -> HttpResponse:
    response = HttpResponse(document_export(), content_type="application/yaml; charset=utf-8")
    filename = f"{request.workspace.slug}-metrics.yaml"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
