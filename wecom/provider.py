"""APIs authorised by the provider_access_token: web login, install links, licences (§5, §6)."""

from __future__ import annotations

from collections.abc import Sequence

from wecom.facade import JSON
from wecom.facade import compact
from wecom.facade import uses
from wecom.licence import LicenceApi


class ProviderApi(LicenceApi):
    """APIs authorised by the provider_access_token: web login, links, licenses (§6).

    License methods are flat on this facade (`provider.create_new_order(...)`), named
    exactly as the WeCom API: inherited from LicenceApi (wecom/licence.py). List
    arguments are named and shaped as the wire field.
    """

    # §5 provider APIs ---------------------------------------------------------------
    @uses("get_login_info")
    def get_login_info(self, *, auth_code: str) -> JSON:
        """Return usertype, user_info, corp_info (and agent/auth_info for admins)."""
        return self._call("get_login_info", json={"auth_code": auth_code})

    @uses("get_customized_auth_url")
    def get_customized_auth_url(
        self, *, templateid_list: Sequence[str], state: str | None = None
    ) -> JSON:
        """Return {"qrcode_url", "expires_in"}: a 代开发 auth link (≤9 templates)."""
        return self._call(
            "get_customized_auth_url",
            json=compact(state=state, templateid_list=list(templateid_list)),
        )

    @uses("get_register_code")
    def get_register_code(
        self,
        *,
        template_id: str,
        corp_name: str | None = None,
        admin_name: str | None = None,
        admin_mobile: str | None = None,
        state: str | None = None,
        follow_user: str | None = None,
    ) -> JSON:
        """Return {"register_code", "expires_in"} for a promotion QR."""
        return self._call(
            "get_register_code",
            json=compact(
                template_id=template_id,
                corp_name=corp_name,
                admin_name=admin_name,
                admin_mobile=admin_mobile,
                state=state,
                follow_user=follow_user,
            ),
        )

    @uses("corpid_to_opencorpid")
    def corpid_to_opencorpid(self, *, corpid: str) -> JSON:
        """Return {"open_corpid"} for a plaintext corpid (48001 without authorization)."""
        return self._call("corpid_to_opencorpid", json={"corpid": corpid})
