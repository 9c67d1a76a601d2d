"""The one rule that keeps the service administrable: an administrator never demotes or disables itself, and
the last active administrator is never demoted, disabled or deleted. Every path that changes a role, the
disabled flag or deletes an account calls keep_an_administrator inside its transaction."""

from __future__ import annotations

from server.db import Executor, column
from server.errors import Conflict
from server.services import utcnow

ADMIN_ROLE = "admin"


async def keep_an_administrator(tx: Executor, *, user_id: int, actor_id: int | None, role: str | None = None,
                                disabled: bool | None = None, deleting: bool = False) -> None:
    """409/1005 when the change (a new role, the disabled flag, or the deletion) would take an active
    administrator away from itself or leave no active administrator.

    The check holds under concurrency: every active administrator's row is written first (its updated_at),
    which on one server locks those rows until the commit, and across Galera nodes makes two such
    transactions certify against each other (the loser is replayed by run_transaction and sees the winner's
    change). The read is a locking one: on InnoDB's REPEATABLE READ a plain read answers from the transaction's
    snapshot, fixed by its first plain read, which a caller may have made before waiting here (a delete read
    the account first): both administrators would still look active. Two administrators demoting, disabling or
    deleting each other at once therefore leave one."""
    await tx.execute_later("UPDATE users SET updated_at = %s WHERE role = %s AND disabled = 0", (utcnow(), ADMIN_ROLE))
    rows = await tx.fetch_all("SELECT id FROM users WHERE role = %s AND disabled = 0"  # noqa: S608
                              f"{tx.dialect.for_update}", (ADMIN_ROLE,))
    active = {column(row[0], int) for row in rows}
    leaves = deleting or (role is not None and role != ADMIN_ROLE) or bool(disabled)
    if user_id not in active or not leaves:
        return
    if actor_id == user_id and not deleting:
        raise Conflict("an administrator cannot demote or disable itself")
    if active == {user_id}:
        raise Conflict("the last administrator account cannot be deleted" if deleting
                       else "the last active administrator cannot be demoted or disabled")
