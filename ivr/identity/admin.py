"""Ops actions on authentication: `ivr auth status|unlock`, each unlock logged and audited with who and when.

An attacker who keys wrong PINs on purpose can lock an account (or the ops desk's own accounts during an
incident); ops lift the lock here. Every unlock goes to the log (WARNING) and to an audit stream in Redis
(`ivr:auth:audit`: who, when, what); caller ids appear there masked.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

from ivr import store as keys
from ivr.config import Settings
from ivr.errors import StoreUnavailable
from ivr.identity.lockout import Lockout
from ivr.identity.sms import mask_phone
from ivr.identity.wiring import auth_settings
from ivr.ops.emergency_admin import AdminError, check_by
from ivr.store import Store, connect

log = logging.getLogger("ivr.auth")


async def unlock(store: Store, lockout: Lockout, *, account: str = "", caller_id: str = "", by: str) -> bool:
    """Lift the lock of an account and/or a caller id; returns whether one was locked. Always audited."""
    if not account and not caller_id:
        raise AdminError("name an account or a caller id (--caller)")
    if account and not account.isdigit():
        raise AdminError(f"account {account!r} is not an account number")
    who = check_by(by)
    was = await lockout.unlock(account=account, caller_id=caller_id)
    what = " and ".join(x for x in (f"account {account}" if account else "",
                                     f"caller {mask_phone(caller_id)}" if caller_id else "") if x)
    entry: dict[Any, Any] = {
        "action": "unlock", "account": account, "caller": mask_phone(caller_id) if caller_id else "",
        "by": who, "at": datetime.now(UTC).isoformat(timespec="seconds"), "was_locked": str(int(was))}
    await store.run(lambda r: r.xadd(keys.AUTH_AUDIT, entry, maxlen=keys.AUTH_AUDIT_MAX, approximate=True))
    log.warning("%s unlocked by %s (%s)", what, who, "was locked" if was else "was not locked")
    return was


async def status(lockout: Lockout, account: str) -> dict[str, Any]:
    left, failures = await lockout.status(account)
    return {"account": account, "locked": left is not None,
            "locked_for_s": round(left, 1) if left is not None else 0, "failures_in_window": failures}


async def command(settings: Settings, action: str, *, account: str, caller_id: str, by: str,
                  as_json: bool) -> int:
    """The CLI: 0 done (status: unlocked), 1 status: locked, 2 bad input, 3 Redis unavailable."""
    if not settings.redis_url:
        print("ivr: redis.url is not set: locks live in Redis", file=sys.stderr)
        return 2
    store = connect(settings.redis_url)
    lockout = Lockout(store, auth_settings(settings).lockout_settings())
    started = time.monotonic()
    try:
        if action == "unlock":
            was = await unlock(store, lockout, account=account, caller_id=caller_id, by=by)
            doc: dict[str, Any] = {"unlocked": True, "was_locked": was}
            text = ("unlocked" if was else "was not locked") + f" ({time.monotonic() - started:.2f} s)"
            code = 0
        else:
            if not account.isdigit():
                raise AdminError(f"account {account!r} is not an account number")
            doc = await status(lockout, account)
            text = (f"account {account}: locked for {doc['locked_for_s']:.0f} s more" if doc["locked"]
                    else f"account {account}: not locked") + f", {doc['failures_in_window']} failure(s) in window"
            code = 1 if doc["locked"] else 0
    except AdminError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"ivr: Redis unavailable: {exc}", file=sys.stderr)
        return 3
    finally:
        await store.close()
    print(json.dumps(doc) if as_json else text)
    return code
