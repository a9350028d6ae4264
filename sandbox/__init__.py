"""The WeCom simulator: a real HTTP server that plays WeCom's provider side.

It serves the WeCom API paths the platform calls (§5, §6 of
docs/protocol.md), keeps every token, ticket, code, authorization and license
in memory on a movable clock, pushes encrypted callbacks to the platform, and
offers a JSON control API so tests (and developers) can play the corp admin,
WeCom's console and the network. Imports: stdlib, httpx, PyYAML and
wecom only; production code never imports this package.

Start
-----
    handle = start_sandbox(port=0, callback_base="http://127.0.0.1:8000",
                           config=None | dict | "scenario.yaml", ticket_interval=600)
    handle.base_url, handle.port, handle.state   # state: direct access for tests
    handle.wait_pushes(timeout)                  # True once the push queue drained
    handle.advance(seconds)                      # move the clock, run what is due
    handle.control()                             # SandboxControl(base_url)
    handle.stop()

    python -m sandbox --port 9800 --callback-base http://127.0.0.1:8000 \
        [--config file.yaml] [--ticket-interval 600] [--snapshot state.json]
    python manage.py wecom_sandbox [--port 9800] [--callback-base …] [--config …]

The DEFAULT scenario (no config): one provider (corpid ww…), one third-party suite
(ww…), one 代开发 template (dk…), three corps (wp…) with 2–3 users each (wo…; the
first is an admin), buyer "sandbox_buyer". Ids and secrets are random on every
start: read them from GET /sandbox/config.

WeCom API (host = base_url; errors are HTTP 200 + errcode/errmsg with a hint)
---------------------------------------------------------------------------------
    POST /cgi-bin/service/get_provider_token            (errcode omitted on success)
    POST /cgi-bin/service/get_suite_token
    GET  /cgi-bin/service/get_pre_auth_code             ?suite_access_token
    POST /cgi-bin/service/set_session_info              ?suite_access_token
    POST /cgi-bin/service/v2/get_permanent_code         ?suite_access_token
    POST /cgi-bin/service/get_permanent_code            (v1: + corp token, not 代开发)
    POST /cgi-bin/service/v2/get_auth_info, /cgi-bin/service/get_auth_info
    POST /cgi-bin/service/get_corp_token                (代开发 → 48002)
    GET  /cgi-bin/gettoken?corpid=&corpsecret=          (代开发: permanent code = secret)
    POST /cgi-bin/agent/get_admin_list, /cgi-bin/agent/get_permissions   ?access_token
    POST /cgi-bin/service/get_admin_list                ?suite_access_token (legacy)
    POST /cgi-bin/service/get_app_qrcode                ?suite_access_token
    POST /cgi-bin/service/get_customized_auth_url, /get_register_code,
         /corpid_to_opencorpid                          ?provider_access_token
    POST /cgi-bin/batch/userid_to_openuserid            ?access_token
    GET  /cgi-bin/service/auth/getuserinfo3rd?code=     (lowercase keys)
    GET  /cgi-bin/service/getuserinfo3rd?code=          (legacy: CorpId, UserId …)
    POST /cgi-bin/service/auth/getuserdetail3rd, /cgi-bin/service/getuserdetail3rd
    POST /cgi-bin/service/get_login_info                ?access_token=<provider token>
    GET  /cgi-bin/get_jsapi_ticket, /cgi-bin/ticket/get?type=agent_config,
         /cgi-bin/getcallbackip                         ?access_token
    POST /cgi-bin/license/<name>                        ?provider_access_token (all of §6)
    Corp APIs (?access_token, what the platform's gateway forwards; api_corp.py,
    api_external.py, api_media.py; route names are the paths):
    GET  /cgi-bin/user/get, /user/simplelist, /department/list, /tag/list, /batch/getresult
    POST /cgi-bin/user/list_id, /batch/syncuser, /batch/replaceuser, /batch/replaceparty
    GET  /cgi-bin/externalcontact/list, /externalcontact/get
    POST /cgi-bin/externalcontact/batch/get_by_user, /add_contact_way, /send_welcome_msg
    POST /cgi-bin/message/send
    POST /cgi-bin/media/upload?type= (multipart "media"); GET /cgi-bin/media/get?media_id=
    settings corp_api_quota_per_minute / _per_hour: WeCom's own quota per corp and API
    (45009 until the window's block ends); 0 = off
    GET  /cgi-bin/service/get_account_balance           ?provider_access_token
    POST /cgi-bin/service/get_order, /get_order_list, /prolong_try   ?suite_access_token
         paid apps (应用版本付费, app_orders.py): orders, list by order time, trials
    GET  /3rdapp/install?suite_id=&pre_auth_code=&redirect_uri=&state=[&corpid=]
         plays the admin: 302 to redirect_uri?auth_code=…&expires_in=600&state=…
         (no create_auth push; set_session_info auth_type=1 makes a test install)
    GET  /3rdservice/wework/customized/auth?templateid=&state=[&corpid=]
         a get_customized_auth_url link: plays the admin who authorizes the 代开发
         template (create_auth to the template's command URL)

Authorization rules the simulator keeps: an auth code is good only for the install
that issued it (a reinstall makes older codes 40078, and the old permanent code 40084
or, for 代开发 gettoken, 40001); a new reset code voids the unexchanged ones before it;
edition_info is only in the v1 answers, and only for suites with `editions`.

Control API (JSON; errors are 4xx {"error": …[, "errcode": …]})
---------------------------------------------------------------
    GET    /sandbox/config                  effective scenario, secrets and callback URLs
    POST   /sandbox/settings                {<Settings field>…, callback_base?,
                                             ticket_interval?, buyers?}
    GET    /sandbox/state                   auths, orders, codes, tickets, tokens …
    POST   /sandbox/snapshot                {path?} save the durable state as JSON
    POST   /sandbox/suites                  add a suite/template (pushes its first ticket)
    POST   /sandbox/corps                   add a corp {name, test?, upstream?, users[]}
    POST   /sandbox/corps/<corpid>/users    add a member silently
    POST   /sandbox/corps/<corpid>/users/<userid>   change a member silently
    POST   /sandbox/corps/<corpid>/remove_test      leave the test list: orders → 7
    POST   /sandbox/install                 {suite_id, corpid, state?, test?, push?}
                                            marketplace/QR/代开发 install → create_auth
    POST   /sandbox/cancel_auth             {suite_id, corpid} → cancel_auth
    POST   /sandbox/change_auth             {suite_id, corpid, allow_user?, auth_mode?,
                                             app_permissions? …} → change_auth
    POST   /sandbox/reset_permanent_code    {suite_id (dk…), corpid} → reset_permanent_code
    POST   /sandbox/change_edition          {suite_id, corpid, edition_id?, app_status?,
                                             user_limit?, expired_time?} → change_editon
    POST   /sandbox/activity                {suite_id, corpid, event, effect_time?} →
                                            low_active_alert | low_active | active_restored |
                                            inactive_alert | close_inactive_agent |
                                            reopen_inactive_agent (data URL)
    POST   /sandbox/dissolve_corp           {corpid, errcode?, cancel_auth_after?}
    POST   /sandbox/contact_event           {corpid, change_type, info_type?, suite_id?,
                                             data?} → change_contact / change_external_contact
    POST   /sandbox/change_app_admin        {suite_id, corpid, admins?} → data URL event
    POST   /sandbox/unlicensed              {corpid, userid, suite_id?} →
                                            auto_activate (system) or unlicensed_notify (data)
    POST   /sandbox/oauth_code              {suite_id, corpid, userid | openid, scope?}
    POST   /sandbox/login_code              {corpid, userid, usertype?}
    POST   /sandbox/orders/<order_id>/pay   pay (→ codes, license_pay_success)
    POST   /sandbox/orders/<order_id>/refund {action: request | approve | reject}
    POST   /sandbox/orders/<order_id>/expire unpaid → 3
    POST   /sandbox/app_orders              {suite_id, corpid, edition_id?, user_count?,
                                             period_days?, order_type?, order_from?, dealer?}
                                            a paid-app order (status 0) → open_order
    POST   /sandbox/app_orders/<orderid>/pay | cancel | expire | refund {action} |
                                  change_price {price} → pay_for_app_success + change_editon,
                                  cancel_order, (none), refund + change_editon, change_order
    POST   /sandbox/app_trial/expire        {suite_id, corpid} the trial runs out now
    POST   /sandbox/push_ticket             {suite_id?} new ticket(s) now
    GET    /sandbox/clock; POST /sandbox/clock/advance {seconds}
    POST   /sandbox/tokens/revoke           {token? | kind? | suite_id? | corpid?}
    GET    /sandbox/faults; POST /sandbox/faults; DELETE /sandbox/faults
           API:      {endpoint: name | "*", latency_ms?, http_status?, errcode?, rate?, times?}
           callback: {target: "callback", endpoint | info_type, drop?, delay_ms?, times?}
    GET    /sandbox/requests?endpoint=&errcode=&since_id=;  DELETE /sandbox/requests
           (+ http_hits: every request outside the control API, any path)
    POST   /sandbox/welcome_code            {corpid, userid, external_userid?} → a 20 s code
    GET    /sandbox/messages                app and welcome messages sent
    GET    /sandbox/pushes?info_type=&channel=&status=&suite_id=&corpid=&since_id=;
    DELETE /sandbox/pushes
    POST   /sandbox/pushes/wait             {timeout?} → {drained, pending}
    POST   /sandbox/verify_url              {channel: command | data | system, suite_id?}
    GET    /sandbox/verifications

Callbacks go to {callback_base}/callbacks/suite/<suite_id>/command/ (receive id =
suite/template id), …/data/ (receive id = corpid) and
{callback_base}/callbacks/provider/<provider corpid>/ (receive id = provider corpid).
"""

from sandbox.control import SandboxControl
from sandbox.server import SandboxHandle
from sandbox.server import main
from sandbox.server import start_sandbox

__all__ = ["SandboxControl", "SandboxHandle", "main", "start_sandbox"]
