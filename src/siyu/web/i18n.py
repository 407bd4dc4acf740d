"""The message catalogue of the pages in zh-CN and English, and the choice of language per request.

Language: the `lang` cookie (set by the switch in the header), else the browser's Accept-Language, else zh-CN.
"""

from __future__ import annotations

from starlette.requests import Request

from siyu.livecodes.messages import MESSAGES as LIVECODE_MESSAGES

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
LANG_COOKIE = "lang"

# key -> (zh-CN, en). Chinese domain terms keep their Chinese names in both languages' UI where the
# market knows them that way (活码, 群发, SOP, 私域).
_MESSAGES: dict[str, tuple[str, str]] = {
    "brand.line": ("私域客户运营平台", "Owned customer relationships (私域), in one place"),
    "nav.overview": ("概览", "Overview"),
    "nav.customers": ("客户", "Customers"),
    "nav.imports": ("导入", "Imports"),
    "nav.channels": ("渠道", "Channels"),
    "nav.logout": ("退出", "Log out"),
    "nav.workspace": ("工作区", "Workspace"),
    "nav.switch": ("切换", "Switch"),
    "nav.language": ("语言", "Language"),
    "login.title": ("登录", "Log in"),
    "login.email": ("邮箱", "Email"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Log in"),
    "login.failed": ("邮箱或密码错误，请检查后重试。", "Wrong email or password; check both and try again."),
    "login.no_workspace": (
        "该账号尚未加入任何工作区，请联系管理员。",
        "This account belongs to no workspace yet; ask an administrator to add you.",
    ),
    "nav.metrics": ("数据", "Metrics"),
    "nav.rfm": ("分层", "Layers"),
    "rfm.title": ("RFM 分层与生命周期", "RFM layers and lifecycle"),
    "rfm.last_run": (
        "最近一次计算：{time}（siyu rfm / siyu lifecycle）",
        "Last computed {time} (siyu rfm / siyu lifecycle)",
    ),
    "rfm.never_run": (
        "尚未计算：运行 siyu rfm 与 siyu lifecycle。",
        "Not computed yet: run siyu rfm and siyu lifecycle.",
    ),
    "rfm.layers_title": ("RFM 八类客户", "The eight RFM layers"),
    "rfm.layer": ("分层", "Layer"),
    "rfm.money": ("期间消费", "Spent in the window"),
    "rfm.money_share": ("消费占比", "Share of money"),
    "rfm.mean_recency": ("平均最近购买（天）", "Mean recency (days)"),
    "rfm.stages_title": ("生命周期阶段", "Lifecycle stages"),
    "rfm.flows_title": ("近 {days} 天的阶段流转", "Moves between stages, last {days} days"),
    "rfm.no_flows": ("这段时间没有客户变换阶段。", "No customer changed stage in this period."),
    "rfm.from": ("从", "From"),
    "rfm.to": ("到", "To"),
    "stage.lead": ("潜客", "Lead"),
    "stage.new": ("新客", "New"),
    "stage.active": ("活跃", "Active"),
    "stage.loyal": ("忠诚", "Loyal"),
    "stage.dormant": ("沉睡", "Dormant (沉睡)"),
    "stage.churned": ("流失", "Churned"),
    "stage.reactivated": ("唤醒", "Reactivated"),
    "metrics.title": ("数据", "Metrics"),
    "metrics.start": ("开始", "From"),
    "metrics.end": ("结束", "To"),
    "metrics.attribution": ("归因", "Attribution"),
    "metrics.last_touch": ("末次触点", "Last touch"),
    "metrics.first_touch": ("首次触点", "First touch"),
    "metrics.definitions": (
        "口径见 docs/metrics.md：购买 = 已支付或部分退款的订单；金额为扣除退款后的净额。",
        "Definitions in docs/metrics.md: a purchase is a paid or partially refunded order; money is net of refunds.",
    ),
    "metrics.repurchase": ("复购率", "Repurchase rate (复购率)"),
    "metrics.repeat_of_buyers": ("{repeat} / {buyers} 位购买客户", "{repeat} of {buyers} buyers"),
    "metrics.conversion": ("转化率", "Conversion (转化率)"),
    "metrics.converted_of_joined": (
        "{converted} / {joined} 位新客 30 天内首购",
        "{converted} of {joined} new customers bought within 30 days",
    ),
    "metrics.gmv_share": ("私域 GMV 占比", "Private-domain GMV share"),
    "metrics.frequency_ratio": ("私域客户购买频次倍数", "Private-domain purchase frequency"),
    "metrics.per_buyer": (
        "人均 {private} 次 vs 其他 {others} 次",
        "{private} purchases per buyer vs {others} for the others",
    ),
    "metrics.roi_title": ("渠道 ROI 与获客成本", "Channel ROI and CAC"),
    "metrics.channel": ("渠道", "Channel"),
    "metrics.revenue": ("归因收入", "Attributed revenue"),
    "metrics.cost": ("成本", "Cost"),
    "metrics.new_customers": ("新客", "New customers"),
    "metrics.intervals_title": ("复购间隔分布（天）", "Days between purchases"),
    "metrics.mean_interval": ("平均间隔（天）", "Mean interval (days)"),
    "metrics.cohorts_title": ("按首购月份的客户 LTV", "LTV by acquisition month"),
    "metrics.cohort": ("首购月份", "Acquired"),
    "metrics.customers": ("客户数", "Customers"),
    "overview.title": ("概览", "Overview"),
    "overview.customers": ("客户数", "Customers"),
    "overview.orders": ("订单数", "Orders"),
    "overview.revenue": ("净收入", "Net revenue"),
    "overview.period_orders": ("期间订单", "Orders in period"),
    "overview.chart_title": ("各渠道月度净收入", "Net revenue by channel per month"),
    "overview.period": ("期间", "Period"),
    "overview.data_ends": (
        "最近 {months} 个月没有订单；显示截至最后一笔订单（{day}）的 {months} 个月。",
        "No orders in the last {months} months; showing the {months} months up to the newest order ({day}).",
    ),
    "overview.months": ("月数", "Months"),
    "overview.apply": ("应用", "Apply"),
    "overview.no_data": ("该期间暂无订单。", "No orders in this period."),
    "overview.month": ("月份", "Month"),
    "overview.total": ("合计", "Total"),
    "overview.table_title": ("数据表", "Data table"),
    "customers.title": ("客户", "Customers"),
    "customers.search": ("搜索", "Search"),
    "customers.search_placeholder": ("手机号、姓名或身份标识", "Phone, name or identity"),
    "customers.none": ("没有找到客户。", "No customers found."),
    "customers.next_page": ("下一页", "Next page"),
    "customers.first_page": ("第一页", "First page"),
    "customers.name": ("姓名", "Name"),
    "customers.phone": ("手机号", "Phone"),
    "customers.city": ("城市", "City"),
    "customers.orders": ("订单数", "Orders"),
    "customers.net_revenue": ("净消费", "Net spend"),
    "customers.last_order": ("最近下单", "Last order"),
    "customers.created": ("创建时间", "Created"),
    "customers.unnamed": ("(未命名)", "(no name)"),
    "c360.profile": ("基本信息", "Profile"),
    "c360.gender": ("性别", "Gender"),
    "c360.birthday": ("生日", "Birthday"),
    "c360.owner": ("负责员工", "Owner"),
    "c360.no_owner": ("未分配", "Unassigned"),
    "c360.first_channel": ("首个渠道", "First channel"),
    "c360.attributes": ("自定义属性", "Custom attributes"),
    "c360.identities": ("身份标识", "Identities"),
    "c360.kind": ("类型", "Kind"),
    "c360.value": ("值", "Value"),
    "c360.source": ("来源", "Source"),
    "c360.rollup": ("消费汇总", "Purchase summary"),
    "c360.order_count": ("订单数", "Orders"),
    "c360.net_revenue": ("净消费", "Net spend"),
    "c360.refunded": ("已退款", "Refunded"),
    "c360.aov": ("客单价", "Average order value"),
    "c360.first_order": ("首单时间", "First order"),
    "c360.last_order": ("最近下单", "Last order"),
    "c360.last_event": ("最近行为", "Last event"),
    "c360.categories": ("购买品类", "Categories bought"),
    "c360.orders": ("订单", "Orders"),
    "c360.order_no": ("订单号", "Order number"),
    "c360.status": ("状态", "Status"),
    "c360.paid": ("实付", "Paid"),
    "c360.placed_at": ("下单时间", "Placed"),
    "c360.lines": ("商品明细", "Lines"),
    "c360.no_orders": ("暂无订单。", "No orders yet."),
    "c360.timeline": ("行为时间线", "Timeline"),
    "c360.no_timeline": ("暂无记录。", "Nothing recorded yet."),
    "c360.consents": ("授权", "Consent"),
    "c360.no_consents": ("暂无授权记录。", "No consent recorded."),
    "c360.contact_channel": ("触达渠道", "Contact channel"),
    "c360.purpose": ("用途", "Purpose"),
    "c360.older": ("更早的记录", "Older entries"),
    "c360.back": ("返回客户列表", "Back to customers"),
    "imports.title": ("导入", "Imports"),
    "imports.upload": ("上传文件", "Upload a file"),
    "imports.kind": ("数据类型", "Kind of data"),
    "imports.kind.customers": ("客户", "Customers"),
    "imports.kind.orders": ("订单", "Orders"),
    "imports.kind.events": ("行为事件", "Events"),
    "imports.file": ("文件 (CSV / Excel .xlsx / JSONL)", "File (CSV / Excel .xlsx / JSONL)"),
    "imports.preview": ("预览字段映射", "Preview the mapping"),
    "imports.mapping": ("字段映射", "Column mapping"),
    "imports.mapping_help": (
        "系统已根据表头自动识别字段，可在下方修改；选择“忽略”则不导入该列。",
        "Columns were matched from their headers; change any below, or choose 'ignore' to skip a column.",
    ),
    "imports.column": ("文件列", "File column"),
    "imports.field": ("对应字段", "Field"),
    "imports.ignore": ("忽略", "ignore"),
    "imports.encoding": ("编码", "Encoding"),
    "imports.first_rows": ("前几行", "First rows"),
    "imports.strict": ("严格模式：有任何错误行则全部不写入", "Strict: write nothing if any row is bad"),
    "imports.start": ("开始导入", "Start the import"),
    "imports.progress": ("导入进度", "Import progress"),
    "imports.running": ("正在导入…", "Importing…"),
    "imports.failed": ("导入失败", "The import failed"),
    "imports.result": ("导入结果", "Import result"),
    "imports.rows_total": ("总行数", "Rows"),
    "imports.inserted": ("新增", "Inserted"),
    "imports.updated": ("更新", "Updated"),
    "imports.unchanged": ("未变化", "Unchanged"),
    "imports.rejected": ("拒绝", "Rejected"),
    "imports.rejects": ("被拒绝的行", "Rejected rows"),
    "imports.row": ("行号", "Row"),
    "imports.reason": ("原因", "Reason"),
    "imports.download": ("下载拒绝报告 (CSV)", "Download the reject report (CSV)"),
    "imports.no_rejects": ("没有被拒绝的行。", "No row was rejected."),
    "imports.history": ("最近的导入", "Recent imports"),
    "imports.none": ("还没有导入记录。", "No imports yet."),
    "imports.file_name": ("文件名", "File"),
    "imports.created": ("时间", "When"),
    "imports.status": ("状态", "Status"),
    "imports.unavailable": (
        "导入服务暂不可用。",
        "The import service is not available in this installation.",
    ),
    "channels.title": ("渠道", "Channels"),
    "channels.key": ("编码", "Key"),
    "channels.name": ("名称", "Name"),
    "channels.source_type": ("渠道类型", "Source type"),
    "channels.aliases": ("别名 (用 | 分隔)", "Aliases (separated by |)"),
    "channels.add": ("添加渠道", "Add a channel"),
    "channels.costs": ("渠道成本", "Costs"),
    "channels.add_cost": ("添加成本", "Add a cost"),
    "channels.period_start": ("开始日期", "From"),
    "channels.period_end": ("结束日期 (含)", "To (inclusive)"),
    "channels.amount": ("金额 (元)", "Amount (yuan)"),
    "channels.note": ("备注", "Note"),
    "channels.none": ("还没有渠道。", "No channels yet."),
    "channels.no_costs": ("暂无成本记录。", "No costs recorded."),
    "channels.channel": ("渠道", "Channel"),
    "channels.saved": ("已保存。", "Saved."),
    "source.store": ("门店", "Store"),
    "source.douyin": ("抖音", "Douyin"),
    "source.taobao": ("淘宝", "Taobao"),
    "source.meituan": ("美团", "Meituan"),
    "source.ads": ("广告投放", "Ads"),
    "source.official_account": ("公众号", "Official account"),
    "source.wecom_live_code": ("企微活码", "WeCom 活码 (live code)"),
    "source.mini_program": ("小程序", "Mini program"),
    "source.referral": ("老带新", "Referral"),
    "source.other": ("其他", "Other"),
    "gender.male": ("男", "male"),
    "gender.female": ("女", "female"),
    "gender.unknown": ("未知", "unknown"),
    "status.pending": ("待支付", "pending"),
    "status.paid": ("已支付", "paid"),
    "status.partially_refunded": ("部分退款", "partially refunded"),
    "status.refunded": ("已退款", "refunded"),
    "status.cancelled": ("已取消", "cancelled"),
    "status.running": ("进行中", "running"),
    "status.done": ("完成", "done"),
    "status.failed": ("失败", "failed"),
    "status.granted": ("已授权", "granted"),
    "status.withdrawn": ("已撤回", "withdrawn"),
    "field.phone": ("手机号", "Phone"),
    "field.email": ("邮箱", "Email"),
    "field.wecom_external_userid": ("企微外部联系人ID", "WeCom external user id"),
    "field.wechat_unionid": ("微信 UnionID", "WeChat UnionID"),
    "field.wechat_openid": ("微信 OpenID", "WeChat OpenID"),
    "field.shop_member_id": ("会员号", "Shop member id"),
    "field.douyin_open_id": ("抖音 OpenID", "Douyin open id"),
    "field.name": ("姓名", "Name"),
    "field.gender": ("性别", "Gender"),
    "field.birthday": ("生日", "Birthday"),
    "field.city": ("城市", "City"),
    "field.channel": ("渠道", "Channel"),
    "field.owner_email": ("负责员工邮箱", "Owner's email"),
    "field.created_at": ("创建时间", "Created at"),
    "field.external_id": ("订单号 / 外部ID", "Order number / external id"),
    "field.status": ("状态", "Status"),
    "field.placed_at": ("下单时间", "Placed at"),
    "field.currency": ("币种", "Currency"),
    "field.total_cents": ("订单总额", "Order total"),
    "field.discount_cents": ("优惠金额", "Discount"),
    "field.paid_cents": ("实付金额", "Amount paid"),
    "field.refunded_cents": ("退款金额", "Amount refunded"),
    "field.store": ("门店编码", "Store code"),
    "field.line_no": ("行号", "Line number"),
    "field.sku": ("商品编码", "SKU"),
    "field.product_name": ("商品名称", "Product name"),
    "field.category": ("品类", "Category"),
    "field.quantity": ("数量", "Quantity"),
    "field.unit_price_cents": ("单价", "Unit price"),
    "field.line_amount_cents": ("行金额", "Line amount"),
    "field.type": ("事件类型", "Event type"),
    "field.occurred_at": ("发生时间", "Occurred at"),
    "field.source": ("来源", "Source"),
    "field.properties": ("属性 (JSON)", "Properties (JSON)"),
    "error.title": ("出错了", "Something went wrong"),
    "error.not_found": ("找不到该页面或记录。", "That page or record does not exist here."),
    "error.forbidden": ("你没有权限执行此操作。", "Your role may not do this."),
    "error.back": ("返回概览", "Back to the overview"),
    "common.save": ("保存", "Save"),
    "common.none": ("—", "—"),
    "common.yes": ("是", "yes"),
    "common.no": ("否", "no"),
}
_MESSAGES.update(LIVECODE_MESSAGES)


def normalize(lang: str | None) -> str | None:
    """The supported language a tag stands for (`zh`, `zh-Hans-CN` → zh-CN; `en-GB` → en), or None."""
    if not lang:
        return None
    tag = lang.strip().lower()
    if tag.startswith("zh"):
        return "zh-CN"
    if tag.startswith("en"):
        return "en"
    return None


def from_accept_language(header: str) -> str | None:
    """The best supported language of an Accept-Language header, honouring q-values."""
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        language = normalize(tag)
        if language and quality > 0:
            choices.append((-quality, position, language))
    return min(choices)[2] if choices else None


def language_of(request: Request) -> str:
    """The language of this request's pages."""
    return (
        normalize(request.cookies.get(LANG_COOKIE))
        or from_accept_language(request.headers.get("accept-language", ""))
        or DEFAULT_LANGUAGE
    )


def translate(key: str, lang: str, **values: object) -> str:
    """The message `key` in `lang` with `{name}` placeholders filled; an unknown key shows as itself."""
    pair = _MESSAGES.get(key)
    if pair is None:
        return key.format(**values) if values else key
    text = pair[0] if lang == "zh-CN" else pair[1]
    return text.format(**values) if values else text


def has_message(key: str) -> bool:
    return key in _MESSAGES


def catalogue_keys() -> list[str]:
    return list(_MESSAGES)
