"""Accept-Language: zh-CN answers errors in Chinese throughout: the generic message, the specific one and every
field message; English stays as it was."""

from __future__ import annotations

import pytest

from server.i18n import chinese
from tests.factories import assert_error, create_pet, user_with_token

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


def test_an_untranslated_text_stays_english_and_templates_keep_their_values():
    assert chinese("a message nobody translated") is None
    assert chinese("String should have at least 8 characters") == "至少 8 个字符"
    assert chinese("a viewer of this pet may not do this") == "该宠物的 viewer 无权执行此操作"
    assert chinese("missing scope: pets:write users:me") == "缺少权限范围：pets:write users:me"
