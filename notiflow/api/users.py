"""Directory sync from the issue system (service role): who exists, their roles and how to reach them."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from notiflow.api.auth import Service
from notiflow.api.deps import Session
from notiflow.contracts import User
from notiflow.directory import upsert_users

router = APIRouter(prefix="/api/v1/users", tags=["issue system"])


@router.put("/{user_id}", response_model=User, summary="Create or update a directory entry")
async def put_user(user_id: str, user: User, _service: Service, session: Session) -> User:
    if user.id != user_id:
        raise HTTPException(422, f"the body's id {user.id!r} differs from the URL's {user_id!r}; they must match")
    await upsert_users(session, [user])
    await session.commit()
    return user
