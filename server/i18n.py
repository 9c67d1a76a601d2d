"""Simplified Chinese for the English texts of error answers: the specific messages the services raise and the
field messages of validation errors (ours and pydantic's). tests/test_i18n.py finds every message in the sources and
checks each has an entry. A field message with none stays English; an error's specific message with none (a
plugin's) gives way to its code's Chinese message (APIError.localized)."""

from __future__ import annotations

import re
from functools import lru_cache

_TABLE: list[tuple[str, str]] = [
    # validation: ours
    (r"must not be blank", "不能为空"),
    (r"must not contain control or bidirectional control characters", "不能包含控制字符或双向控制字符"),
    (r"must be a date as YYYY-MM-DD", "必须是 YYYY-MM-DD 格式的日期"),
    (r"must be a valid calendar date", "必须是有效的日期"),
    (r"must be a date and time with a zone, as YYYY-MM-DDTHH:MM:SSZ",
     "必须是带时区的日期和时间，格式如 YYYY-MM-DDTHH:MM:SSZ"),
    (r"must be a valid date and time", "必须是有效的日期和时间"),
    (r"not a cursor of this list and sort", "不是该列表及其排序的游标"),
    (r"not a cursor of this API", "不是本 API 的游标"),
    (r"must be 0 \(or absent\) with a cursor", "使用 cursor 时必须为 0（或不提供）"),
    (r"must be true \(one session ends with DELETE /v1/sessions/\{id\}\)",
     "必须为 true（结束单个会话请用 DELETE /v1/sessions/{id}）"),
    (r"is one of the ([\d,]+) most common or breached passwords; choose another",
     r"属于最常见或已泄露的 \1 个密码之一，请另选一个"),
    (r"unknown role", "未知角色"),
    (r"looks like an existing account's e-mail \(it differs only by case, width or look-alike characters\); "
     r"promote that account by its own address",
     "看起来像一个已有账户的电子邮件（只在大小写、全角半角或形近字符上不同）；请用该账户本身的地址提升它"),
    (r"1 to 255 visible ASCII characters", "1 到 255 个可见 ASCII 字符"),
    (r"an image is required", "需要一张图片"),
    (r"more than (\d+) pixels", r"超过 \1 像素"),
    (r"truncated or corrupt image: (.+)", r"图片数据被截断或已损坏：\1"),
    (r"too detailed to store", "细节过多，无法存储"),
    (r"must not be in the future", "不能是未来的时间"),
    (r"must not be before (\d{4}-\d\d-\d\d)", r"不能早于 \1"),
    (r"must not be more than (\d+) years after today", r"不能晚于今天之后 \1 年"),
    (r"must be an integer", "必须是整数"),
    (r"unknown field", "未知字段"),
    (r"read-only field", "只读字段"),
    (r"unknown parameter", "未知参数"),
    (r"given more than once", "重复给出"),
    (r"must be UTF-8", "必须是 UTF-8 编码"),
    (r"nothing to change", "没有要修改的内容"),
    (r"does not match", "不匹配"),
    (r"a JSON object is required", "需要一个 JSON 对象"),
    (r"malformed JSON", "JSON 格式错误"),
    (r"current_password is required to change the password", "修改密码需要提供 current_password"),
    (r"must not contain the service's name or your e-mail's name", "不能包含服务名称或您的电子邮件用户名"),
    # validation: pydantic's
    (r"Field required", "必填"),
    (r"Extra inputs are not permitted", "不允许的字段"),
    (r"String should have at most (\d+) characters?", r"最多 \1 个字符"),
    (r"String should have at least (\d+) characters?", r"至少 \1 个字符"),
    (r"Input should be a valid string", "必须是字符串"),
    (r"Input should be a valid integer.*", "必须是整数"),
    (r"Input should be a valid number.*", "必须是数字"),
    (r"Input should be a valid boolean.*", "必须是布尔值"),
    (r"Input should be a finite number", "必须是有限的数字"),
    (r"Input should be greater than or equal to (\S+)", r"必须大于或等于 \1"),
    (r"Input should be less than or equal to (\S+)", r"必须小于或等于 \1"),
    (r"Input should be greater than (\S+)", r"必须大于 \1"),
    (r"Input should be less than (\S+)", r"必须小于 \1"),
    (r"Input should be (.+) or (.+)", r"必须是 \1 或 \2 之一"),
    (r"Input should be (.+)", r"必须是 \1"),
    (r"value is not a valid email address: .*", "不是有效的电子邮件地址"),
    # specific messages
    (r"request body is empty", "请求体为空"),
    (r"request body must be a JSON object", "请求体必须是 JSON 对象"),
    (r"request body is too large", "请求体过大"),
    (r"Content-Type must be application/json", "Content-Type 必须是 application/json"),
    (r"this operation takes no request body", "此操作不接受请求体"),
    (r"must be empty", "必须为空"),
    (r"query string is not UTF-8", "查询字符串不是 UTF-8 编码"),
    (r"query parameter given more than once: (.+)", r"查询参数重复给出：\1"),
    (r"no such route", "路由不存在"),
    (r"method not allowed", "方法不允许"),
    (r"request entity too large", "请求体过大"),
    (r"unsupported media type", "不支持的媒体类型"),
    (r"request header fields too large", "请求头过大"),
    (r"invalid cursor", "无效的游标"),
    (r"offset and cursor exclude each other", "offset 与 cursor 不能同时使用"),
    (r"malformed HTTP request", "HTTP 请求格式错误"),
    (r"authorization header is missing", "缺少 Authorization 请求头"),
    (r"authorization header must be 'Bearer <token>'", "Authorization 请求头必须是 'Bearer <令牌>'"),
    (r"missing scope: (.+)", r"缺少权限范围：\1"),
    (r"a (owner|caretaker|viewer) of this pet may not do this", r"该宠物的 \1 无权执行此操作"),
    (r"metrics are served to local addresses only", "指标只对本机地址提供"),
    (r"the e-mail is already registered", "该电子邮件已注册"),
    (r"the e-mail is already verified", "该电子邮件已验证"),
    (r"wrong account or password", "账户或密码错误"),
    (r"not a member of this pet", "不是该宠物的成员"),
    (r"an administrator cannot demote or disable itself", "管理员不能降级或停用自己"),
    (r"the last active administrator cannot be demoted or disabled", "不能降级或停用最后一个有效的管理员"),
    (r"the last administrator account cannot be deleted", "不能删除最后一个管理员账户"),
    (r"the password does not match", "密码不匹配"),
    (r"two-factor authentication is already on; turn it off first", "双重验证已开启，请先关闭"),
    (r"no enrollment to confirm: start with POST /v1/users/me/mfa",
     "没有待确认的双重验证：请先调用 POST /v1/users/me/mfa"),
    (r"verify your e-mail address first \(POST /v1/users/me/email-verification\) to answer invitations",
     "请先验证您的电子邮件地址（POST /v1/users/me/email-verification），才能回复邀请"),
    (r"too many failed logins, try again later", "登录失败次数过多，请稍后再试"),
    (r"too many wrong passwords, try again later", "密码错误次数过多，请稍后再试"),
    (r"too many requests for this account or address, try again later", "该账户或地址的请求过多，请稍后再试"),
    (r"too many password hashes waiting, try again later", "等待处理的密码运算过多，请稍后再试"),
    (r"revocation list is stale", "令牌撤销列表已过期"),
    (r"role service is unavailable", "角色服务不可用"),
    (r"the database pool is closed", "数据库连接池已关闭"),
    (r"server is restarting", "服务器正在重启"),
    (r"sync sequencer raced another pass", "同步编号与另一轮处理冲突"),
    (r"the pet has no photo", "该宠物没有照片"),
    (r"the request body is empty: send the image's bytes", "请求体为空：请发送图片的字节"),
    (r"the photo is being replaced: try again", "照片正在被替换，请重试"),
    (r"the photo could not be processed now, try again later", "照片暂时无法处理，请稍后再试"),
    (r"the photo could not be processed: its worker process stopped twice, try again later",
     "照片无法处理：处理它的工作进程两次中止，请稍后再试"),
    (r"the photo waited too long to be processed, try again later", "照片等待处理的时间过长，请稍后再试"),
    (r"too many photos waiting to be processed, try again later", "等待处理的照片过多，请稍后再试"),
    (r"the server is stopping", "服务器正在停止"),
    (r"Content-Type must be one of (.+), not (.+)", r"Content-Type 必须是 \1 之一，而不是 \2"),
    (r"the body is not an? (.+) image \(its content does not match (.+)\)", r"请求体不是 \1 图片（其内容与 \2 不符）"),
    (r"image: declares more than (\d+) pixels(.*)", r"图片：声明的像素超过 \1\2"),
    (r"image: truncated or corrupt \((.+)\)", r"图片：数据被截断或已损坏（\1）"),
    (r"image: over (\d+) bytes even re-encoded and scaled down", r"图片：重新编码并缩小后仍超过 \1 字节"),
    (r"(.+) must be 1 to 255 visible ASCII characters", r"\1 必须是 1 到 255 个可见 ASCII 字符"),
]
_PATTERNS = [(re.compile(english, re.S), chinese) for english, chinese in _TABLE]


@lru_cache(maxsize=1024)
def chinese(text: str) -> str | None:
    """The Chinese of an English message, or None when there is none."""
    for pattern, template in _PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return match.expand(template)
    return None


def localize_errors(errors: list[dict[str, str]], lang: str) -> list[dict[str, str]]:
    """Field errors with their messages in `lang` ('en' as they are)."""
    if lang != "zh":
        return errors
    return [{**e, "message": chinese(e["message"]) or e["message"]} for e in errors]
