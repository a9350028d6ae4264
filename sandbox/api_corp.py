"""Corp APIs called with a corp access_token: contacts (seed 003) and batch jobs.

What a product reaches through the platform's gateway. External contacts and app
messages are in api_external.py, media in api_media.py (imported below so the server
registers every route by importing this module).

Visibility (third-party apps): a member outside the app's visible range (User.visible
False) answers 60011 on user/get and is left out of the lists; an unknown one 60111.
代开发 apps see the members' names and contact fields, third-party apps do not (§2:
since 2020-06-30 names are not given to third parties; the userid stands in).
"""

from __future__ import annotations

import secrets
from typing import Any

from sandbox import directory
from sandbox.api import Call
from sandbox.api import _decode_cursor
from sandbox.api import _encode_cursor
from sandbox.api import route
from sandbox.api_auth import token_auth
from sandbox.credentials import CORP
from sandbox.errors import ApiError
from sandbox.models import Authorization
from sandbox.models import Corp
from sandbox.models import User

# user/list_id: limit 1..10000, default 1000 (path/96067).
LIST_ID_LIMIT_MAX = 10000


def corp_and_auth(call: Call) -> tuple[Corp, Authorization]:
    """Return the corp and authorization of the call's corp token (48004, dissolved)."""
    return token_auth(call)


def visible_user(call: Call, corp: Corp, userid: str) -> User:
    user = corp.users.get(userid)
    if user is None:
        raise ApiError(60111, f"userid {userid} not found")
    if not user.visible:
        raise ApiError(60011, f"{userid} is outside the app's visible range")
    return user


def _user_body(user: User, auth: Authorization) -> dict[str, Any]:
    body: dict[str, Any] = {
        "userid": user.userid,
        "name": user.name if auth.customized else user.userid,
        "department": list(user.department),
        "order": [0] * len(user.department),
        "main_department": user.department[0] if user.department else 1,
        "is_leader_in_dept": [0] * len(user.department),
        "status": user.status,
        "open_userid": user.open_userid,
    }
    if auth.customized:
        body.update(
            position=user.position,
            mobile=user.mobile,
            gender=user.gender,
            email=user.email,
            avatar=user.avatar,
        )
    return body


def _int_param(call: Call, name: str, *, required: bool) -> int | None:
    raw = call.query.get(name, "")
    if raw == "":
        if required:
            raise ApiError(40063, f"{name} missing")
        return None
    try:
        return int(raw)
    except ValueError:
        raise ApiError(40058, f"{name} must be an integer") from None


# ----- members -----------------------------------------------------------------------


@route("user/get", "/cgi-bin/user/get", method="GET", token=CORP)
def user_get(call: Call) -> dict[str, Any]:
    userid = call.text("userid", source=call.query, missing=40063)
    corp, auth = corp_and_auth(call)
    return _user_body(visible_user(call, corp, userid), auth)


@route("user/list_id", "/cgi-bin/user/list_id", token=CORP)
def user_list_id(call: Call) -> dict[str, Any]:
    limit = call.integer("limit", required=False, default=1000)
    if not 1 <= limit <= LIST_ID_LIMIT_MAX:
        raise ApiError(40058, f"limit must be 1..{LIST_ID_LIMIT_MAX}")
    cursor = call.text("cursor", required=False)
    corp, _ = corp_and_auth(call)
    rows = [
        {"userid": u.userid, "department": d}
        for u in corp.users.values()
        if u.visible
        for d in u.department
    ]
    start = _decode_cursor("list_id", cursor) if cursor else 0
    page = rows[start : start + limit]
    more = start + limit < len(rows)
    return {
        "next_cursor": _encode_cursor("list_id", start + limit) if more else "",
        "dept_user": page,
    }


@route("user/simplelist", "/cgi-bin/user/simplelist", method="GET", token=CORP)
def user_simplelist(call: Call) -> dict[str, Any]:
    department_id = _int_param(call, "department_id", required=True)
    fetch_child = call.query.get("fetch_child") == "1"
    corp, auth = corp_and_auth(call)
    wanted = directory.department_ids(corp, department_id) if fetch_child else {department_id}
    if not directory.department_ids(corp, department_id):
        raise ApiError(60123, f"department {department_id} not found")
    return {
        "userlist": [
            {
                "userid": u.userid,
                "name": u.name if auth.customized else u.userid,
                "department": list(u.department),
                "open_userid": u.open_userid,
            }
            for u in corp.users.values()
            if u.visible and wanted & set(u.department)
        ]
    }


# ----- departments and tags ------------------------------------------------------------


@route("department/list", "/cgi-bin/department/list", method="GET", token=CORP)
def department_list(call: Call) -> dict[str, Any]:
    root = _int_param(call, "id", required=False)
    corp, _ = corp_and_auth(call)
    found = directory.departments(corp)
    if root is not None:
        ids = directory.department_ids(corp, root)
        if not ids:
            raise ApiError(60123, f"department {root} not found")
        found = [d for d in found if d["id"] in ids]
    return {"department": [{**d, "department_leader": []} for d in found]}


@route("tag/list", "/cgi-bin/tag/list", method="GET", token=CORP)
def tag_list(call: Call) -> dict[str, Any]:
    corp, _ = corp_and_auth(call)
    return {"taglist": directory.tags(corp)}


# ----- batch jobs (异步批量接口) ----------------------------------------------------------


def _batch_job(call: Call, job_type: str) -> dict[str, Any]:
    media_id = call.text("media_id", missing=40063)
    corp, _ = corp_and_auth(call)
    data = call.state.corp_data
    media = data.media.get(media_id)
    if media is None or media.corpid != corp.corpid:
        raise ApiError(40007, "invalid media_id")
    lines = [line for line in media.data.decode("utf-8", "replace").splitlines() if line.strip()]
    rows = [line.split(",")[0].strip() for line in lines[1:]]  # a header line first (CSV)
    if job_type == "replace_party":
        result = [{"action": 1, "partyid": i + 2, "errcode": 0, "errmsg": "ok"} for i in rows]
    else:
        result = [{"userid": r, "errcode": 0, "errmsg": "ok"} for r in rows]
    job = directory.BatchJob(
        jobid=secrets.token_hex(16),
        corpid=corp.corpid,
        type=job_type,
        total=len(rows),
        result=result,
        done_at=call.now() + call.state.settings.batch_job_seconds,
    )
    data.jobs[job.jobid] = job
    order = data.job_order.setdefault(corp.corpid, [])
    order.append(job.jobid)
    return {"jobid": job.jobid}


@route("batch/syncuser", "/cgi-bin/batch/syncuser", token=CORP)
def batch_syncuser(call: Call) -> dict[str, Any]:
    return _batch_job(call, "sync_user")


@route("batch/replaceuser", "/cgi-bin/batch/replaceuser", token=CORP)
def batch_replaceuser(call: Call) -> dict[str, Any]:
    return _batch_job(call, "replace_user")


@route("batch/replaceparty", "/cgi-bin/batch/replaceparty", token=CORP)
def batch_replaceparty(call: Call) -> dict[str, Any]:
    return _batch_job(call, "replace_party")


@route("batch/getresult", "/cgi-bin/batch/getresult", method="GET", token=CORP)
def batch_getresult(call: Call) -> dict[str, Any]:
    jobid = call.text("jobid", source=call.query, missing=40063)
    corp, _ = corp_and_auth(call)
    data = call.state.corp_data
    job = data.jobs.get(jobid)
    if job is None or job.corpid != corp.corpid:
        raise ApiError(40088, "jobid not found")
    if jobid not in data.job_order[corp.corpid][-directory.JOBS_KEPT :]:
        raise ApiError(40089, "job result has been cleared")
    if call.now() < job.done_at:
        return {"status": 2, "type": job.type, "total": job.total, "percentage": 50, "result": []}
    return {
        "status": 3,
        "type": job.type,
        "total": job.total,
        "percentage": 100,
        "result": job.result,
    }


# Registered by import: external contacts and messages, media.
from sandbox import api_external  # noqa: E402, F401
from sandbox import api_media  # noqa: E402, F401

__all__ = ["corp_and_auth", "visible_user"]
