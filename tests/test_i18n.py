"""Accept-Language: zh-CN answers errors in Chinese throughout: the generic message, the specific one and every
field message; English stays as it was."""

from __future__ import annotations

import ast
import importlib
from typing import Any

import pytest

from server.errors import APIError, Conflict, HTTPFailure
from server.handlers.base import BaseHandler
from server.i18n import chinese
from tests.factories import assert_error, create_pet, user_with_token
from tests.plugins.records.test_handlers import add_record
from tests.processes import ROOT

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}


@pytest.mark.gen_test
async def test_field_and_specific_messages_are_translated_under_zh(app, api):
    _, token = await user_with_token(app)
    bad = {"name": "   ", "species": "dragon", "breed": "x" * 65, "birth_date": "2020-13-01", "colour": "red"}
    english = await api.post("/v1/pets", json=bad, token=token)
    chinese_answer = await api.post("/v1/pets", json=bad, token=token, headers=ZH)
    assert_error(english, 400, 1001, "POST /v1/pets", "invalid parameter")
    assert_error(chinese_answer, 400, 1001, "POST /v1/pets", "参数错误")
    fields = {e["field"]: e["message"] for e in chinese_answer.body["errors"]}
    assert [e["field"] for e in chinese_answer.body["errors"]] == [e["field"] for e in english.body["errors"]]
    assert fields == {"name": "不能为空",
                      "species": "必须是 'dog', 'cat', 'bird', 'rabbit', 'fish', 'reptile' 或 'other' 之一",
                      "breed": "最多 64 个字符", "birth_date": "必须是有效的日期", "colour": "未知字段"}

    pet = await create_pet(api, token)
    cases = [
        (api.post("/v1/pets", body=b"{}", token=token, headers={**ZH, "Content-Type": "text/plain"}),
         415, 1007, "POST /v1/pets", "Content-Type 必须是 application/json"),
        (api.get("/v1/pets?specie=cat&limit=1&limit=2", token=token, headers=ZH),
         400, 1001, "GET /v1/pets", "查询参数重复给出：limit"),
        (api.get("/v1/pets", headers=ZH), 401, 1003, "GET /v1/pets", "缺少 Authorization 请求头"),
        (api.patch(f"/v1/pets/{pet['id']}", json={}, token=token, headers=ZH),
         400, 1001, f"PATCH /v1/pets/{pet['id']}", "参数错误"),
        (api.get("/v1/nowhere", headers=ZH), 404, 1007, "GET /v1/nowhere", "路由不存在"),
    ]
    for call, status, code, request, message in cases:
        assert_error(await call, status, code, request, message)
    nothing = await api.patch(f"/v1/pets/{pet['id']}", json={}, token=token, headers=ZH)
    assert nothing.body["errors"] == [{"field": "body", "message": "没有要修改的内容"}]
    unknown = await api.get("/v1/pets?specie=cat", token=token, headers=ZH)
    assert unknown.body["errors"] == [{"field": "specie", "message": "未知参数"}]


@pytest.mark.gen_test
async def test_records_cursor_and_conflict_messages_are_chinese_under_zh(app, api):
    """The messages the audit met in English under zh: completed_at's, a cursor's, and a specific 409."""
    user, token = await user_with_token(app, verified=True)
    pet = await create_pet(api, token)
    record = await add_record(api, token, pet["id"])
    path = f"/v1/pets/{pet['id']}/records/{record['id']}"
    cases = [
        (api.patch(path, token=token, json={"completed_at": "2026-12-07T10:00:00"}, headers=ZH),
         400, {"error_code": 1001, "message": "参数错误", "request": f"PATCH {path}", "errors": [
             {"field": "completed_at", "message": "必须是带时区的日期和时间，格式如 YYYY-MM-DDTHH:MM:SSZ"}]}),
        (api.patch(path, token=token, json={"completed_at": "2026-13-01T00:00:00Z"}, headers=ZH),
         400, {"error_code": 1001, "message": "参数错误", "request": f"PATCH {path}", "errors": [
             {"field": "completed_at", "message": "必须是有效的日期和时间"}]}),
        (api.get(f"/v1/pets/{pet['id']}/records?cursor=abc", token=token, headers=ZH),
         400, {"error_code": 1001, "message": "无效的游标", "request": f"GET /v1/pets/{pet['id']}/records",
               "errors": [{"field": "cursor", "message": "不是该列表及其排序的游标"}]}),
        (api.get(f"/v1/pets/{pet['id']}/records?cursor=abc&offset=5", token=token, headers=ZH),
         400, {"error_code": 1001, "message": "offset 与 cursor 不能同时使用",
               "request": f"GET /v1/pets/{pet['id']}/records",
               "errors": [{"field": "offset", "message": "使用 cursor 时必须为 0（或不提供）"}]}),
        (api.post("/v1/users/me/email-verification", token=token, json={}, headers=ZH),
         409, {"error_code": 1005, "message": "该电子邮件已验证", "request": "POST /v1/users/me/email-verification"}),
    ]
    for call, status, body in cases:
        response = await call
        assert (response.status, response.body) == (status, body)


def test_an_untranslated_text_gives_way_to_its_codes_chinese_and_templates_keep_their_values():
    assert chinese("a message nobody translated") is None
    # a specific message with no Chinese (a plugin's: the server's all have one) gives way to the code's Chinese
    assert Conflict("a message nobody translated").localized("zh") == "资源冲突"
    assert Conflict("a message nobody translated").localized("en") == "a message nobody translated"
    assert Conflict().localized("zh") == "资源冲突"
    assert HTTPFailure("no such route", status=404).localized("zh") == "路由不存在"
    assert chinese("String should have at least 8 characters") == "至少 8 个字符"
    assert chinese("a viewer of this pet may not do this") == "该宠物的 viewer 无权执行此操作"
    assert chinese("missing scope: pets:write users:me") == "缺少权限范围：pets:write users:me"


# Modules whose ValueErrors no client reads: start-up configuration errors, a programming error, and a cursor's
# decoding errors, which fetch_page answers with its own message (elsewhere a ValueError is a pydantic validator's).
VALUE_ERRORS_NOT_ANSWERED = {"server/config.py", "server/db/url.py", "server/rbac.py", "server/sdnotify.py",
                             "server/plugins/photos/pool.py", "server/plugins/accounts/settings.py",
                             "server/services/__init__.py", "server/plugins/accounts/services/users.py"}
SUCCESS = "ok"  # the success envelope's message, the same in every language
LOG_LINES = "server/logs.py"  # its "message" keys are log lines
# Values for the parts of an f-string that only exist when it is raised (locals and arguments).
SAMPLES: dict[str, object] = {
    "', '.join(repeated)": "limit", "' '.join(sorted(required - principal.scopes))": "pets:write",
    "pet.role": "viewer", "limits.max_pixels": 40_000_000, "declared": " (8000 x 8000)", "reason": "broken data",
    "limits.max_bytes": 8_388_608, "expected": "JPEG", "content_type": "image/png", "content_type or 'none'": "none",
    "octets": 70, "len(common_passwords())": 100_000,
}


def _texts(node: ast.expr, module: Any) -> list[str]:
    """The English texts an expression can be: a literal, a module constant, either branch of a condition, or an
    f-string with SAMPLES (or the module's own values) in its holes; [] for a local whose value comes from elsewhere."""
    if isinstance(node, ast.Constant):
        return [node.value] if isinstance(node.value, str) else []
    if isinstance(node, ast.IfExp):
        return _texts(node.body, module) + _texts(node.orelse, module)
    if isinstance(node, ast.Name):
        value = getattr(module, node.id, None)
        return [value] if isinstance(value, str) else []
    if isinstance(node, ast.JoinedStr):
        parts = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                parts.append(str(part.value))
                continue
            assert isinstance(part, ast.FormattedValue)
            source = ast.unparse(part.value)
            try:
                value = eval(source, vars(module))  # noqa: S307 - the server's own source
            except (NameError, AttributeError):
                assert source in SAMPLES, f"{module.__name__}: add a sample for {{{source}}}"
                value = SAMPLES[source]
            spec = ast.unparse(part.format_spec)[2:-1] if part.format_spec else ""
            parts.append(format(repr(value) if part.conversion == ord("r") else value, spec))
        return ["".join(parts)]
    return []


def answered_texts() -> dict[str, str]:
    """Every English text the server's sources can put in an error answer, with where it is: the detail of an error
    class, a pydantic error's or a ValueError's message, a field error's message, a `message=` argument or default."""
    paths = [p for p in sorted((ROOT / "server").rglob("*.py")) if p.relative_to(ROOT).as_posix() != LOG_LINES]
    modules = [importlib.import_module(p.relative_to(ROOT).with_suffix("").as_posix().removesuffix("/__init__")
                                       .replace("/", ".")) for p in paths]
    error_names = {"PydanticCustomError", "ValueError", "APIError"}
    pending = list(APIError.__subclasses__())
    while pending:
        cls = pending.pop()
        error_names.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    found: dict[str, str] = {}
    for path, module in zip(paths, modules, strict=True):
        relative = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            exprs: list[ast.expr] = []
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
                if name == "ValueError" and relative in VALUE_ERRORS_NOT_ANSWERED:
                    continue
                if name in error_names and node.args:
                    exprs.append(node.args[1] if name == "PydanticCustomError" else node.args[0])
                exprs += [k.value for k in node.keywords if k.arg == "message"]
            elif isinstance(node, ast.Dict):
                exprs += [v for k, v in zip(node.keys, node.values, strict=True)
                          if isinstance(k, ast.Constant) and k.value == "message"]
            elif isinstance(node, ast.arguments):
                named = node.posonlyargs + node.args
                exprs += [d for a, d in zip(named[len(named) - len(node.defaults):], node.defaults, strict=True)
                          if a.arg == "message"]
                exprs += [d for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=True)
                          if a.arg == "message" and d is not None]
            for expr in exprs:
                for text in _texts(expr, module):
                    if text != SUCCESS:
                        found.setdefault(text, f"{relative}:{expr.lineno}")
    for status in HTTPFailure.statuses:  # what tornado's own refusals say (BaseHandler._as_api_error)
        found.setdefault(BaseHandler._status_message(status), "server/handlers/base.py: _status_message")
    return found


def test_every_message_the_server_can_answer_has_chinese():
    """The README promises the generic message, the specific one and each field message in Chinese."""
    texts = answered_texts()
    assert len(texts) > 70, texts  # the sweep sees the sources
    missing = {text: where for text, where in texts.items() if chinese(text) is None}
    assert missing == {}, "\n".join(f"{where}: {text}" for text, where in missing.items())
