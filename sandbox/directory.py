"""What the corp APIs read and write: departments, tags, external contacts, media, jobs.

Departments, tags and external contacts are derived from the corp fixture (its users
and their departments), so every scenario has a directory without configuring one;
external contacts are minted once per corp on first use, with ids that depend only on
the corp and the member (stable across restarts). Media, batch jobs, welcome codes,
"contact me" configurations and sent messages live here too; none of it is part of a
snapshot (like the request log, it describes one run).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sandbox.models import Corp

# External contacts minted per visible member on first use.
EXTERNALS_PER_USER = 2
# media_id lives 3 days (WeCom: 临时素材 3 天内有效).
MEDIA_TTL = 3 * 86400
# WeCom keeps the results of a corp's last 5 batch jobs (40089 for older ones, §9).
JOBS_KEPT = 5
# A welcome_code is good for 20 s, once (§3).
WELCOME_CODE_TTL = 20


@dataclass
class Media:
    media_id: str
    corpid: str
    type: str
    filename: str
    content_type: str
    data: bytes = field(repr=False)
    created_at: float


@dataclass
class BatchJob:
    jobid: str
    corpid: str
    type: str  # sync_user | replace_user | replace_party
    total: int
    result: list[dict[str, Any]]
    done_at: float


@dataclass
class WelcomeCode:
    code: str
    corpid: str
    userid: str
    external_userid: str
    expires_at: float
    used: bool = False


@dataclass
class ExternalContact:
    external_userid: str
    name: str
    type: int  # 1 WeChat user, 2 WeCom user
    gender: int
    follow: list[dict[str, Any]] = field(default_factory=list)

    def contact(self) -> dict[str, Any]:
        return {
            "external_userid": self.external_userid,
            "name": self.name,
            "type": self.type,
            "avatar": f"https://wx.qlogo.cn/mmhead/{self.external_userid}/0",
            "gender": self.gender,
        }


@dataclass
class CorpData:
    """Per-run corp API state (guarded by the state lock like the rest)."""

    media: dict[str, Media] = field(default_factory=dict)
    jobs: dict[str, BatchJob] = field(default_factory=dict)
    job_order: dict[str, list[str]] = field(default_factory=dict)  # corpid -> oldest first
    welcome_codes: dict[str, WelcomeCode] = field(default_factory=dict)
    contact_ways: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    externals: dict[str, dict[str, ExternalContact]] = field(default_factory=dict)
    # corp_quota.py: (corpid, api) -> {"m": [window, count], "h": [window, count]}
    quota: dict[tuple[str, str], dict[str, list[int]]] = field(default_factory=dict)
    # (corpid, api) -> blocked until (simulator clock)
    blocks: dict[tuple[str, str], float] = field(default_factory=dict)


def departments(corp: Corp) -> list[dict[str, Any]]:
    """Return the corp's departments: the root (1) and every one a member belongs to."""
    ids = sorted({d for user in corp.users.values() for d in user.department} - {1})
    root = {"id": 1, "name": corp.name, "name_en": "", "parentid": 0, "order": 100000000}
    return [root] + [
        {"id": i, "name": f"部门{i}", "name_en": "", "parentid": 1, "order": 100000000 - i}
        for i in ids
    ]


def department_ids(corp: Corp, root: int) -> set[int]:
    """Return ``root`` and its descendants (the tree is root 1 with one level below)."""
    ids = {d["id"] for d in departments(corp)}
    if root not in ids:
        return set()
    return ids if root == 1 else {root}


def tags(corp: Corp) -> list[dict[str, Any]]:
    """Return the corp's tags: one per department below the root, plus an admins tag."""
    found = [{"tagid": 1, "tagname": "管理员"}]
    found += [{"tagid": d["id"], "tagname": f"{d['name']}成员"} for d in departments(corp)[1:]]
    return found


def _stable_id(prefix: str, *parts: str) -> str:
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()
    return prefix + digest[:30]


def externals(data: CorpData, corp: Corp, now: float) -> dict[str, ExternalContact]:
    """Return the corp's external contacts, minting them on first use."""
    found = data.externals.get(corp.corpid)
    if found is not None:
        return found
    found = {}
    for n, user in enumerate(u for u in corp.users.values() if u.visible and u.status == 1):
        for i in range(EXTERNALS_PER_USER):
            external_userid = _stable_id("wm", corp.corpid, user.userid, str(i))
            found[external_userid] = ExternalContact(
                external_userid=external_userid,
                name=f"客户{n + 1}-{i + 1}",
                type=1,
                gender=1 + (i % 2),
                follow=[
                    {
                        "userid": user.userid,
                        "remark": "",
                        "description": "",
                        "createtime": int(now) - 86400 * (i + 1),
                        "tags": [],
                        "remark_mobiles": [],
                        "add_way": 1,
                        "oper_userid": user.userid,
                    }
                ],
            )
    data.externals[corp.corpid] = found
    return found


def followed_by(contacts: dict[str, ExternalContact], userid: str) -> list[ExternalContact]:
    return [c for c in contacts.values() if any(f["userid"] == userid for f in c.follow)]
