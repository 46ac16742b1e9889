"""The echo channel: a customer message arrives as ``POST /echo/in``, and every agent reply
is kept in memory and listed by ``GET /echo/out``.

It is an example of an adapter package of an integrator's own, installed beside the gateway
and found through its ``zhongtai.adapters`` entry point; the gateway's tests install it and
run a message through it. A real channel would check the sender's signature on the webhook
and call its platform's API in send().
"""

from __future__ import annotations

from typing import ClassVar

import msgspec
from aiohttp import web

from adapters.contract import Adapter, AdapterHost, CustomerRef, Inbound, Outbound


class EchoConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[echo]`` table."""

    enabled: bool = True
    account: str = "default"


class EchoIn(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /echo/in``: the channel's message id is the dedupe key."""

    id: str
    customer: str
    text: str


class EchoAccepted(msgspec.Struct):
    conversation_id: str
    message_id: str
    duplicate: bool


class EchoReply(msgspec.Struct):
    """One reply, as ``GET /echo/out`` lists it."""

    conversation_id: str
    customer: str
    text: str
    agent_name: str | None


class EchoAdapter(Adapter[EchoConfig]):
    name: ClassVar[str] = "echo"
    Config: ClassVar[type[msgspec.Struct]] = EchoConfig

    def __init__(self, config: EchoConfig, host: AdapterHost) -> None:
        super().__init__(config, host)
        self.replies: list[EchoReply] = []
        self._decode = msgspec.json.Decoder(EchoIn).decode

    def web_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/in", self._receive)
        app.router.add_get("/out", self._list_replies)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        try:
            message = self._decode(await request.read())
        except msgspec.ValidationError as error:
            return web.Response(status=400, text=f"bad message: {error}")
        except msgspec.DecodeError:
            return web.Response(status=400, text="bad message: not JSON")
        result = await self.host.ingest(
            Inbound(
                channel=self.name,
                account=self.config.account,
                external_id=message.id,
                customer=CustomerRef(id=message.customer),
                text=message.text,
            )
        )
        # Answered only now that ingest returned: the message is stored.
        accepted = EchoAccepted(result.conversation_id, result.message.id, result.duplicate)
        return web.Response(body=msgspec.json.encode(accepted), content_type="application/json")

    async def _list_replies(self, request: web.Request) -> web.Response:
        return web.Response(body=msgspec.json.encode(self.replies), content_type="application/json")

    async def send(self, outbound: Outbound) -> None:
        self.replies.append(
            EchoReply(
                conversation_id=outbound.conversation_id,
                customer=outbound.customer.id,
                text=outbound.text,
                agent_name=outbound.agent_name,
            )
        )
