"""A stand-in for WeChat's platform, for tests: one aiohttp server with the Official Account
API under ``/mp`` (api.weixin.qq.com) and WeCom's under ``/work`` (qyapi.weixin.qq.com),
answering with the platform's real error codes. Point an account's ``api_base`` at
``fake.mp_base`` or ``fake.work_base``.

It also builds callbacks exactly the way the platform does (signed; in safe mode encrypted
with wechatpy's crypto), so tests post what WeChat would post.

Reusable: nothing here knows Zhongtai.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import itertools
import re
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import msgspec
import xmltodict
from aiohttp import web
from wechatpy.crypto import WeChatCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WeComCrypto

STABLE_TOKEN_EARLY_S = 300  # WeChat hands out a new stable token in a token's last 5 minutes
TOKEN_TTL_S = 7200

# Scripted answers for fail_next(): an HTTP status, a JSON answer, or one of these.
DROP = "drop"  # close the connection without answering, before doing anything
DROP_AFTER = "drop_after"  # do the work, then close the connection without answering


@dataclasses.dataclass
class _Token:
    owner: str
    kind: str  # "stable", "legacy", "wecom"
    expires_at: float


def _err(errcode: int, errmsg: str) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": f"{errmsg} rid: fake"})


class FakeWeChat:
    def __init__(self) -> None:
        self.apps: dict[str, str] = {}  # appid -> secret
        self.corps: dict[str, str] = {}  # corpid -> secret
        self.tokens: dict[str, _Token] = {}
        self.current: dict[tuple[str, str], str] = {}  # (kind, owner) -> latest token
        self.calls: collections.Counter[str] = collections.Counter()
        self.sent: list[dict[str, Any]] = []  # customer-service messages (with "_appid")
        self.sent_tokens: list[str] = []  # the access token each message of sent came with
        # Every call, in arrival order: (endpoint, its access_token parameter or "").
        self.requests: list[tuple[str, str]] = []
        self.kf_sent: list[dict[str, Any]] = []
        self.media: dict[str, tuple[bytes, str, str]] = {}  # id -> (data, content type, type)
        self.users: dict[str, dict[str, Any]] = {}  # openid -> user/info answer
        self.kf_customers: dict[str, dict[str, Any]] = {}
        self.files: dict[str, tuple[bytes, str]] = {}  # served at /files/{name} (any host)
        self.kf_messages: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        self.kf_page_size = 1000
        self.sync_tokens: set[str] = set()
        self.closed_windows: set[str] = set()  # openids whose 48 h window is over: 45015
        self.kf_taken: set[str] = set()  # customers a WeCom servicer took: 95018
        self.quota: dict[str, int] = {}  # openid -> replies left before 45047
        # While set to an unset Event, token endpoints wait for it (to overlap callers).
        self.hold_tokens: asyncio.Event | None = None
        self.token_waiting = 0
        # Endpoints whose calls wait for the event before they are answered.
        self.holds: dict[str, asyncio.Event] = {}
        self._failures: dict[str, collections.deque[Any]] = collections.defaultdict(
            collections.deque
        )
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # Set-up.

    def add_app(self, app_id: str, secret: str) -> None:
        self.apps[app_id] = secret

    def add_corp(self, corp_id: str, secret: str) -> None:
        self.corps[corp_id] = secret

    def fail_next(self, endpoint: str, *answers: Any) -> None:
        """The next calls of endpoint get these answers instead of the real one: an HTTP
        status (int), a JSON dict (e.g. {"errcode": 45015, ...}), DROP or DROP_AFTER."""
        self._failures[endpoint].extend(answers)

    def expire_tokens(self) -> None:
        """Every token issued so far has expired (calls get 42001)."""
        for token in self.tokens.values():
            token.expires_at = 0

    def invalidate_tokens(self) -> None:
        """Every token issued so far is invalid (as after a force refresh elsewhere)."""
        self.tokens.clear()
        self.current.clear()

    def add_kf_message(self, open_kfid: str, item: dict[str, Any]) -> None:
        item = {"open_kfid": open_kfid, "send_time": int(time.time()), "origin": 3, **item}
        self.kf_messages[open_kfid].append(item)

    def new_sync_token(self) -> str:
        token = "ENC" + secrets.token_urlsafe(16)
        self.sync_tokens.add(token)
        return token

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mp_base(self) -> str:
        return self.base + "/mp"

    @property
    def work_base(self) -> str:
        return self.base + "/work"

    async def start(self) -> FakeWeChat:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        mp = [
            ("POST", "/mp/cgi-bin/stable_token", "stable_token", self._stable_token),
            ("GET", "/mp/cgi-bin/token", "token", self._legacy_token),
            ("POST", "/mp/cgi-bin/message/custom/send", "custom_send", self._custom_send),
            ("POST", "/mp/cgi-bin/media/upload", "media_upload", self._upload),
            ("GET", "/mp/cgi-bin/media/get", "media_get", self._media_get),
            ("GET", "/mp/cgi-bin/user/info", "user_info", self._user_info),
            ("GET", "/work/cgi-bin/gettoken", "gettoken", self._gettoken),
            ("POST", "/work/cgi-bin/kf/sync_msg", "kf_sync_msg", self._kf_sync),
            ("POST", "/work/cgi-bin/kf/send_msg", "kf_send_msg", self._kf_send),
            ("POST", "/work/cgi-bin/media/upload", "kf_media_upload", self._upload),
            ("GET", "/work/cgi-bin/media/get", "kf_media_get", self._media_get),
            ("POST", "/work/cgi-bin/kf/customer/batchget", "kf_customer", self._kf_customer),
        ]
        mp.append(("GET", "/files/{name}", "files", self._file))
        for method, path, name, handler in mp:
            app.router.add_route(method, path, self._wrap(name, handler))
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _wrap(self, name: str, handler: Any) -> Any:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            self.calls[name] += 1
            self.requests.append((name, request.query.get("access_token", "")))
            if name in self.holds:
                await self.holds[name].wait()
            failures = self._failures[name]
            scripted = failures.popleft() if failures else None
            if scripted == DROP:
                await request.read()
                assert request.transport is not None
                request.transport.close()
                raise web.HTTPInternalServerError()
            if isinstance(scripted, int):
                return web.Response(status=scripted, text=f"HTTP {scripted} (scripted)")
            if isinstance(scripted, dict):
                return web.json_response(scripted)
            response = await handler(request)
            if scripted == DROP_AFTER:
                assert request.transport is not None
                request.transport.close()
                raise web.HTTPInternalServerError()
            return response

        return wrapped

    async def _file(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["name"])
        if found is None:
            return web.Response(status=404)
        return web.Response(body=found[0], content_type=found[1])

    # Tokens.

    def _issue(self, kind: str, owner: str) -> tuple[str, int]:
        token = f"{kind[:2]}-{secrets.token_hex(8)}"
        self.tokens[token] = _Token(owner, kind, time.time() + TOKEN_TTL_S)
        self.current[(kind, owner)] = token
        return token, TOKEN_TTL_S

    async def _hold(self) -> None:
        if self.hold_tokens is not None:
            self.token_waiting += 1
            try:
                await self.hold_tokens.wait()
            finally:
                self.token_waiting -= 1

    async def _stable_token(self, request: web.Request) -> web.Response:
        body = msgspec.json.decode(await request.read())
        await self._hold()
        if body.get("grant_type") != "client_credential":
            return _err(40002, "invalid grant_type")
        app_id, secret = body.get("appid"), body.get("secret")
        if app_id not in self.apps:
            return _err(40013, "invalid appid")
        if self.apps[app_id] != secret:
            return _err(40125, "invalid appsecret")
        current = self.current.get(("stable", app_id))
        valid = self.tokens.get(current or "")
        if body.get("force_refresh"):
            if current:
                self.tokens.pop(current, None)  # force mode invalidates the last token
        elif valid is not None and valid.expires_at - time.time() > STABLE_TOKEN_EARLY_S:
            left = int(valid.expires_at - time.time())
            return web.json_response({"access_token": current, "expires_in": left})
        token, ttl = self._issue("stable", app_id)
        return web.json_response({"access_token": token, "expires_in": ttl})

    async def _legacy_token(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("appid") not in self.apps:
            return _err(40013, "invalid appid")
        if self.apps[q["appid"]] != q.get("secret"):
            return _err(40125, "invalid appsecret")
        old = self.current.get(("legacy", q["appid"]))
        if old:
            self.tokens.pop(old, None)  # /cgi-bin/token invalidates the previous token
        token, ttl = self._issue("legacy", q["appid"])
        return web.json_response({"access_token": token, "expires_in": ttl})

    async def _gettoken(self, request: web.Request) -> web.Response:
        q = request.query
        await self._hold()
        corp = q.get("corpid", "")
        if corp not in self.corps:
            return _err(40013, "invalid corpid")
        if self.corps[corp] != q.get("corpsecret"):
            return _err(40001, "invalid credential")
        current = self.current.get(("wecom", corp))
        valid = self.tokens.get(current or "")
        if valid is not None and valid.expires_at > time.time():
            left = int(valid.expires_at - time.time())
            return web.json_response(
                {"errcode": 0, "errmsg": "ok", "access_token": current, "expires_in": left}
            )
        token, ttl = self._issue("wecom", corp)
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": ttl}
        )

    def _check_token(self, request: web.Request, wecom: bool) -> tuple[str, web.Response | None]:
        token = request.query.get("access_token")
        if not token:
            return "", _err(41001, "access_token missing")
        issued = self.tokens.get(token)
        if issued is None or (issued.kind == "wecom") != wecom:
            if wecom:
                return "", _err(40014, "invalid access_token")
            return "", _err(40001, "invalid credential, access_token is invalid or not latest")
        if issued.expires_at < time.time():
            return "", _err(42001, "access_token expired")
        return issued.owner, None

    # Official Account API.

    async def _custom_send(self, request: web.Request) -> web.Response:
        owner, problem = self._check_token(request, wecom=False)
        if problem is not None:
            return problem
        body = msgspec.json.decode(await request.read())
        to = body.get("touser")
        if not to:
            return _err(40003, "invalid openid")
        msgtype = body.get("msgtype")
        if msgtype == "text":
            if not (body.get("text") or {}).get("content"):
                return _err(44004, "empty content")
        elif msgtype == "image":
            media_id = (body.get("image") or {}).get("media_id")
            if media_id not in self.media:
                return _err(40007, "invalid media_id")
        else:
            return _err(40008, "invalid message type")
        if to in self.closed_windows:
            return _err(45015, "response out of time limit or subscription is canceled")
        if to in self.quota:
            if self.quota[to] <= 0:
                return _err(45047, "out of response count limit")
            self.quota[to] -= 1
        self.sent.append({**body, "_appid": owner})
        self.sent_tokens.append(request.query["access_token"])
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _upload(self, request: web.Request) -> web.Response:
        wecom = request.path.startswith("/work/")
        _, problem = self._check_token(request, wecom=wecom)
        if problem is not None:
            return problem
        media_type = request.query.get("type", "")
        allowed = (
            ("image", "voice", "video", "file") if wecom else ("image", "voice", "video", "thumb")
        )
        if media_type not in allowed:
            return _err(40004, "invalid media type")
        form = await request.post()
        field = form.get("media")
        if not isinstance(field, web.FileField):
            return _err(41005, "media data missing")
        data = field.file.read()
        if media_type == "image" and len(data) > 10 * 1024 * 1024:
            return _err(40009, "invalid image size")
        if not data:
            return _err(40005, "invalid file type")
        media_id = f"media-{next(self._ids)}-{hashlib.sha1(data).hexdigest()[:8]}"
        self.media[media_id] = (data, field.content_type, media_type)
        answer: dict[str, Any] = {
            "type": media_type,
            "media_id": media_id,
            "created_at": int(time.time()),
        }
        if wecom:
            answer = {"errcode": 0, "errmsg": "", **answer, "created_at": str(answer["created_at"])}
        return web.json_response(answer)

    async def _media_get(self, request: web.Request) -> web.Response:
        _, problem = self._check_token(request, wecom=request.path.startswith("/work/"))
        if problem is not None:
            return problem
        found = self.media.get(request.query.get("media_id", ""))
        if found is None:
            return _err(40007, "invalid media_id")
        data, ctype, _ = found
        return web.Response(body=data, content_type=ctype)

    async def _user_info(self, request: web.Request) -> web.Response:
        _, problem = self._check_token(request, wecom=False)
        if problem is not None:
            return problem
        openid = request.query.get("openid", "")
        user = self.users.get(openid)
        if user is None:
            return _err(40003, "invalid openid")
        return web.json_response({"subscribe": 1, "openid": openid, **user})

    # WeCom 微信客服 API.

    async def _kf_sync(self, request: web.Request) -> web.Response:
        _, problem = self._check_token(request, wecom=True)
        if problem is not None:
            return problem
        body = msgspec.json.decode(await request.read())
        token = body.get("token")
        if token and token not in self.sync_tokens:
            return _err(95007, "invalid msg token")
        open_kfid = body.get("open_kfid", "")
        cursor = body.get("cursor") or "c0"
        try:
            start = int(cursor.removeprefix("c"))
        except ValueError:
            return _err(95000, "invalid cursor")
        limit = min(int(body.get("limit") or 1000), self.kf_page_size)
        messages = self.kf_messages.get(open_kfid, [])
        page = messages[start : start + limit]
        end = start + len(page)
        return web.json_response(
            {
                "errcode": 0,
                "errmsg": "ok",
                "next_cursor": f"c{end}",
                "has_more": 1 if end < len(messages) else 0,
                "msg_list": page,
            }
        )

    async def _kf_send(self, request: web.Request) -> web.Response:
        _, problem = self._check_token(request, wecom=True)
        if problem is not None:
            return problem
        body = msgspec.json.decode(await request.read())
        if not body.get("touser") or not body.get("open_kfid"):
            return _err(40003, "invalid external_userid")
        if body["touser"] in self.kf_taken:
            return _err(95018, "send msg session status invalid")
        msgtype = body.get("msgtype")
        if msgtype in ("image", "file", "voice", "video"):
            if (body.get(msgtype) or {}).get("media_id") not in self.media:
                return _err(40007, "invalid media_id")
        elif msgtype != "text":
            return _err(40008, "invalid message type")
        self.kf_sent.append(body)
        msgid = body.get("msgid") or f"msg{next(self._ids)}"
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    async def _kf_customer(self, request: web.Request) -> web.Response:
        _, problem = self._check_token(request, wecom=True)
        if problem is not None:
            return problem
        body = msgspec.json.decode(await request.read())
        found = [
            self.kf_customers[i]
            for i in body.get("external_userid_list", [])
            if i in self.kf_customers
        ]
        invalid = [i for i in body.get("external_userid_list", []) if i not in self.kf_customers]
        return web.json_response(
            {
                "errcode": 0,
                "errmsg": "ok",
                "customer_list": found,
                "invalid_external_userid": invalid,
            }
        )


# Callbacks, built the way the platform builds them.


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def oa_xml(
    openid: str,
    msg_type: str,
    *,
    to: str = "gh_fake",
    create_time: int | None = None,
    **fields: Any,
) -> str:
    """An Official Account message as WeChat pushes it (text in CDATA, numbers bare)."""
    created = create_time if create_time is not None else int(time.time())
    items = {
        "ToUserName": to,
        "FromUserName": openid,
        "CreateTime": created,
        "MsgType": msg_type,
        **fields,
    }
    body = "".join(
        f"<{k}>{v}</{k}>" if isinstance(v, int | float) else f"<{k}><![CDATA[{v}]]></{k}>"
        for k, v in items.items()
    )
    return f"<xml>{body}</xml>"


def oa_callback(
    token: str,
    xml: str,
    *,
    aes_key: str | None = None,
    app_id: str = "",
    compatible: bool = False,
    openid: str = "",
    timestamp: int | None = None,
    nonce: str | None = None,
) -> tuple[dict[str, str], bytes]:
    """(query, body) of a POST to the account's URL: plaintext, or in safe mode (compatible:
    the plaintext fields too) encrypted and signed with msg_signature. The timestamp is now
    and the nonce fresh unless given."""
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = secrets.token_hex(5) if nonce is None else nonce
    query = {"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    if openid:
        query["openid"] = openid
    if aes_key is None:
        return query, xml.encode()
    crypto = WeChatCrypto(token, aes_key, app_id)
    envelope = crypto.encrypt_message(xml, nonce, timestamp)
    parsed = xmltodict.parse(envelope)["xml"]
    encrypt, msg_signature = parsed["Encrypt"], parsed["MsgSignature"]
    query |= {"encrypt_type": "aes", "msg_signature": msg_signature}
    if compatible:
        inner = xml.removeprefix("<xml>").removesuffix("</xml>")
        body = f"<xml>{inner}<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    else:
        found = re.search(r"<ToUserName>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</ToUserName>", xml)
        to = found.group(1) if found else ""
        body = (
            f"<xml><ToUserName><![CDATA[{to}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        )
    return query, body.encode()


def oa_verify_query(token: str, echostr: str, timestamp: int | None = None) -> dict[str, str]:
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = secrets.token_hex(5)
    return {
        "signature": sign(token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": echostr,
    }


def kf_verify_query(token: str, aes_key: str, corp_id: str, echo: str) -> dict[str, str]:
    """WeCom's URL check: echostr is encrypted, and signed with the other parameters."""
    timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
    crypto = WeComCrypto(token, aes_key, corp_id)
    envelope = crypto.encrypt_message(echo, nonce, timestamp)
    parsed = xmltodict.parse(envelope)["xml"]
    return {
        "msg_signature": parsed["MsgSignature"],
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": parsed["Encrypt"],
    }


def kf_notice(
    token: str,
    aes_key: str,
    corp_id: str,
    open_kfid: str,
    sync_token: str,
    timestamp: int | None = None,
) -> tuple[dict[str, str], bytes]:
    """(query, body) of WeCom's kf_msg_or_event callback."""
    inner = (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><CreateTime>{int(time.time())}"
        "</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]>"
        f"</Event><Token><![CDATA[{sync_token}]]></Token><OpenKfId><![CDATA[{open_kfid}]]>"
        "</OpenKfId></xml>"
    )
    timestamp_text = str(int(time.time()) if timestamp is None else timestamp)
    nonce = secrets.token_hex(5)
    crypto = WeComCrypto(token, aes_key, corp_id)
    envelope = crypto.encrypt_message(inner, nonce, timestamp_text)
    parsed = xmltodict.parse(envelope)["xml"]
    body = (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><Encrypt><![CDATA["
        f"{parsed['Encrypt']}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>"
    )
    query = {"msg_signature": parsed["MsgSignature"], "timestamp": timestamp_text, "nonce": nonce}
    return query, body.encode()


def with_query(url: str, query: dict[str, str]) -> str:
    return f"{url}?{urlencode(query)}"
