"""Build callbacks exactly as WeCom sends them (protocol §7.2, §7.4)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from wecom.crypto import CallbackCrypto


@dataclass(frozen=True)
class SignedCallback:
    path: str
    query: dict[str, str]
    body: bytes

    @property
    def url(self) -> str:
        return f"{self.path}?{urlencode(self.query)}"


def envelope(encrypt: str, *, to_user_name: str, agent_id: str = "") -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[{to_user_name}]]></ToUserName>"
        f"<AgentID><![CDATA[{agent_id}]]></AgentID>"
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    ).encode()


def signed(
    *,
    path: str,
    token: str,
    aes_key: str,
    receive_id: str,
    xml: str,
    to_user_name: str | None = None,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> SignedCallback:
    crypto = CallbackCrypto(token, aes_key, receive_id)
    ts = str(timestamp if timestamp is not None else int(time.time()))
    nonce = nonce or secrets.token_hex(8)
    encrypt, signature = crypto.encrypt(xml, ts, nonce)
    return SignedCallback(
        path=path,
        query={"msg_signature": signature, "timestamp": ts, "nonce": nonce},
        body=envelope(encrypt, to_user_name=to_user_name or receive_id),
    )


def suite_command(suite, xml: str, **kwargs) -> SignedCallback:
    return signed(
        path=f"/callbacks/suite/{suite.suite_id}/command/",
        token=suite.callback_token,
        aes_key=suite.encoding_aes_key,
        receive_id=kwargs.pop("receive_id", suite.suite_id),
        xml=xml,
        **kwargs,
    )


def suite_data(suite, corpid: str, xml: str, **kwargs) -> SignedCallback:
    return signed(
        path=f"/callbacks/suite/{suite.suite_id}/data/",
        token=suite.callback_token,
        aes_key=suite.encoding_aes_key,
        receive_id=kwargs.pop("receive_id", corpid),
        xml=xml,
        **kwargs,
    )


def system(provider, xml: str, **kwargs) -> SignedCallback:
    return signed(
        path=f"/callbacks/provider/{provider.corpid}/",
        token=provider.callback_token,
        aes_key=provider.encoding_aes_key,
        receive_id=kwargs.pop("receive_id", provider.corpid),
        xml=xml,
        **kwargs,
    )


def ticket_xml(suite_id: str, ticket: str, timestamp: int) -> str:
    return (
        f"<xml><SuiteId><![CDATA[{suite_id}]]></SuiteId><InfoType><![CDATA[suite_ticket]]>"
        f"</InfoType><TimeStamp>{timestamp}</TimeStamp>"
        f"<SuiteTicket><![CDATA[{ticket}]]></SuiteTicket></xml>"
    )
