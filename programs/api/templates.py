"""Template administration. Every save is a new version and the previous one stays on record.

A template is named ``{notification_type}.{channel}.{locale}``; at most one
version per name is active (the one the pipeline renders). Saving validates
first, so a template that cannot render never becomes active. Each save is
recorded in the audit trail (``template.create`` / ``template.update``) in the
same transaction, with who saved it and each changed field before and after.

Validation and preview render the template, which is CPU work bounded by the
limits in ``notiflow.templates.limits`` (0.5 s per render at most); they run in a
worker thread so the event loop keeps answering (``/healthz``, other requests)
meanwhile. A thread cannot be stopped from outside, so it is the render's own
budget that ends a hostile template, not a timeout here.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from notiflow.audit import record_audit
from notiflow.contracts import Channel
from notiflow.models import NotificationTemplateRow
from notiflow.templates.render import Rendered, TemplateSource, render, template_name
from notiflow.templates.samples import sample_context
from notiflow.templates.store import template_source
from notiflow.templates.validation import validate_template
from notiflow.tokens import Principal
from programs.api.auth import ROLE_ERRORS, Admin
from programs.api.deps import Session
from programs.api.errors import VALIDATION_ERRORS
from programs.api.schemas import (
    TemplateCreate,
    TemplateDraft,
    TemplateEdit,
    TemplateOut,
    TemplatePreview,
    TemplatePreviewRequest,
    TemplateType,
)

router = APIRouter(
    prefix="/api/v1/notifications/templates", tags=["templates"], responses={**ROLE_ERRORS, **VALIDATION_ERRORS}
)

Template = NotificationTemplateRow

#: What a new version copies from the version it edits.
_COPIED_COLUMNS = (
    "name",
    "display_name",
    "description",
    "notification_type",
    "template_type",
    "locale",
    "subject_template",
    "body_template",
    "html_template",
)


#: What the audit trail compares between the version saved and the one it replaces
#: (the rest of a name's columns cannot differ between its versions).
_AUDITED_COLUMNS = ("subject_template", "body_template", "html_template", "display_name", "description")


def _unsaved(draft: TemplateDraft) -> Template:
    return Template(
        name=template_name(draft.notification_type, draft.channel, draft.locale),
        notification_type=draft.notification_type,
        template_type=str(draft.channel),
        locale=draft.locale,
        subject_template=draft.subject_template,
        body_template=draft.body_template,
        html_template=draft.html_template,
        version=0,
    )


def _default_display_name(row: Template) -> str:
    return f"{row.notification_type.replace('_', ' ').title()} ({row.template_type}, {row.locale})"


async def _template_or_404(session: AsyncSession, template_id: uuid.UUID) -> Template:
    row = await session.get(Template, template_id)
    if row is None:
        raise HTTPException(404, f"no template version {template_id}; GET /api/v1/notifications/templates lists them")
    return row


async def _active(session: AsyncSession, name: str) -> Template | None:
    return await session.scalar(select(Template).where(Template.name == name, Template.is_active))


def _audit_details(row: Template, previous: Template | None, edited: Template | None) -> dict[str, Any]:
    """The new version, the version it replaces as active, and each changed field before and after."""
    changes = {
        column: {"before": getattr(previous, column) if previous else None, "after": getattr(row, column)}
        for column in _AUDITED_COLUMNS
        if previous is None or getattr(previous, column) != getattr(row, column)
    }
    details: dict[str, Any] = {
        "id": str(row.id),
        "version": row.version,
        "deactivated": {"id": str(previous.id), "version": previous.version} if previous else None,
        "changes": changes,
    }
    if edited is not None:
        details["edited_from"] = {"id": str(edited.id), "version": edited.version}
    return details


async def _save_new_version(
    session: AsyncSession, row: Template, created_by: str, edited: Template | None = None
) -> Template:
    """Validate, deactivate the active version of the name, insert ``row`` as the next version,
    and record who did it in the same transaction."""
    latest = await session.scalar(select(func.max(Template.version)).where(Template.name == row.name))
    row.version = (latest or 0) + 1
    row.is_active = True
    row.created_by = created_by
    await asyncio.to_thread(validate_template, template_source(row))
    previous = await _active(session, row.name)
    await session.execute(
        update(Template)
        .where(Template.name == row.name, Template.is_active)
        .values(is_active=False, updated_at=func.now())
    )
    session.add(row)
    try:
        await session.flush()
        await record_audit(
            session,
            actor=created_by,
            action="template.update" if latest else "template.create",
            target=row.name,
            details=_audit_details(row, previous, edited),
        )
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise HTTPException(
            409, f"template {row.name} was saved by someone else at the same moment; reload and retry"
        ) from None
    await session.refresh(row)
    return row


@router.get("", response_model=list[TemplateOut], summary="Active templates")
async def list_templates(
    _admin: Admin,
    session: Session,
    notification_type: TemplateType | None = None,
    channel: Channel | None = None,
    locale: Annotated[str | None, Query(max_length=16)] = None,
) -> list[TemplateOut]:
    query = select(Template).where(Template.is_active)
    if notification_type:
        query = query.where(Template.notification_type == notification_type)
    if channel:
        query = query.where(Template.template_type == channel)
    if locale:
        query = query.where(Template.locale == locale)
    query = query.order_by(Template.notification_type, Template.template_type, Template.locale)
    return [TemplateOut.of(row) for row in await session.scalars(query)]


@router.post(
    "",
    status_code=201,
    response_model=TemplateOut,
    summary="Create a template (a new version if one with that name is active)",
)
async def create_template(body: TemplateCreate, admin: Admin, session: Session) -> TemplateOut:
    row = _unsaved(body)
    previous = await _active(session, row.name)
    row.display_name = body.display_name or (previous.display_name if previous else _default_display_name(row))
    if "description" not in body.model_fields_set and previous is not None:
        row.description = previous.description  # an edit that leaves the description out keeps it
    else:
        row.description = body.description
    return TemplateOut.of(await _save_new_version(session, row, admin.user_id))


@router.put("/{template_id}", response_model=TemplateOut, summary="Edit a template: saves a new active version")
async def edit_template(template_id: uuid.UUID, body: TemplateEdit, admin: Admin, session: Session) -> TemplateOut:
    base = await _template_or_404(session, template_id)
    values = {column: getattr(base, column) for column in _COPIED_COLUMNS}
    values.update(body.model_dump(exclude_unset=True))
    return TemplateOut.of(await _save_new_version(session, Template(**values), admin.user_id, edited=base))


@router.get("/{template_id}/versions", response_model=list[TemplateOut], summary="Every version, newest first")
async def list_versions(template_id: uuid.UUID, _admin: Admin, session: Session) -> list[TemplateOut]:
    base = await _template_or_404(session, template_id)
    rows = await session.scalars(select(Template).where(Template.name == base.name).order_by(Template.version.desc()))
    return [TemplateOut.of(row) for row in rows]


def _validated_render(source: TemplateSource, context: dict[str, Any]) -> Rendered:
    validate_template(source)
    return render(source, context)


@router.post("/preview", response_model=TemplatePreview, summary="Render a stored version or a draft")
async def preview_template(request: TemplatePreviewRequest, _admin: Admin, session: Session) -> TemplatePreview:
    if request.template_id is not None:
        row = await _template_or_404(session, request.template_id)
    else:
        assert request.template is not None  # the request model requires one of template_id / template
        row = _unsaved(request.template)
    context = request.context if request.context is not None else sample_context(row.notification_type)
    rendered = await asyncio.to_thread(_validated_render, template_source(row), context)
    return TemplatePreview(subject=rendered.subject, text=rendered.text, html=rendered.html, context=context)


def _version_ref(row: Template | None) -> dict[str, Any] | None:
    return {"id": str(row.id), "version": row.version} if row is not None else None


@router.post(
    "/{template_id}/activate",
    response_model=TemplateOut,
    summary="Make this version the active one of its name (one-click rollback)",
    description="Deactivates the name's active version in the same transaction; the version is validated again "
    "first (422 with the error and its line if it no longer renders). Already active: answered as is, not audited. "
    "Workers pick the change up within 5 s.",
)
async def activate_template(template_id: uuid.UUID, admin: Admin, session: Session) -> TemplateOut:
    row = await _template_or_404(session, template_id)
    if row.is_active:
        return TemplateOut.of(row)
    try:
        await activate_version(session, row, admin)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise _concurrent_change(row.name) from None
    await session.refresh(row)
    return TemplateOut.of(row)


async def activate_version(
    session: AsyncSession, row: Template, admin: Principal, details: dict[str, Any] | None = None
) -> None:
    """Make ``row`` the active version of its name in the caller's transaction, with its ``template.activate``
    audit row (``details`` added to it); validated again first. The caller commits (a concurrent change of the
    same name is an IntegrityError then). Used by the activate route and by an experiment's promotion."""
    await asyncio.to_thread(validate_template, template_source(row))
    previous = await _active(session, row.name)
    await session.execute(
        update(Template)
        .where(Template.name == row.name, Template.is_active)
        .values(is_active=False, updated_at=func.now())
    )
    row.is_active = True
    await _audited(session, row, admin, "template.activate", {"deactivated": _version_ref(previous)} | (details or {}))


@router.post(
    "/{template_id}/deactivate",
    response_model=TemplateOut,
    summary="Deactivate this version: its name then has no active version",
    description="Recipients in that locale then get the base language's or English template of the type and "
    "channel; with none active, their notifications fail with 'no template'. Already inactive: answered as is, "
    "not audited.",
)
async def deactivate_template(template_id: uuid.UUID, admin: Admin, session: Session) -> TemplateOut:
    row = await _template_or_404(session, template_id)
    if not row.is_active:
        return TemplateOut.of(row)
    row.is_active = False
    return await _commit_audited(session, row, admin, "template.deactivate", {})


async def _audited(
    session: AsyncSession, row: Template, admin: Principal, action: str, details: dict[str, Any]
) -> None:
    await session.flush()
    await record_audit(
        session,
        actor=admin.user_id,
        action=action,
        target=row.name,
        details={"id": str(row.id), "version": row.version} | details,
    )


def _concurrent_change(name: str) -> HTTPException:
    return HTTPException(409, f"template {name} was changed by someone else at the same moment; reload and retry")


async def _commit_audited(
    session: AsyncSession, row: Template, admin: Principal, action: str, details: dict[str, Any]
) -> TemplateOut:
    """Commit a version's new state together with its audit row; a concurrent change of the same name is a 409."""
    try:
        await _audited(session, row, admin, action, details)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise _concurrent_change(row.name) from None
    await session.refresh(row)
    return TemplateOut.of(row)
