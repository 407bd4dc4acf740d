"""The lifecycle page's messages, key → (zh-CN, en); merged into the catalogue of siyu.web.i18n."""

from __future__ import annotations

MESSAGES: dict[str, tuple[str, str]] = {
    "nav.lifecycle": ("生命周期", "Lifecycle"),
    "lifecycle.title": ("客户生命周期", "Customer lifecycle"),
    "lifecycle.explain": (
        "阶段来自最近一次 siyu lifecycle 扫描；流失包括久未购买，以及已无法触达（全部渠道退订、或在企业微信删除了导购且不再是任何人的好友）。",
        "Stages come from the last siyu lifecycle sweep; churned includes no purchase for long and unreachable (unsubscribed everywhere, or deleted the staff on WeCom and no one's friend there).",
    ),
    "lifecycle.thresholds": (
        "阈值：忠诚 ≥ {loyal} 单；沉睡 {factor}× 个人购买间隔或 {dormant} 天；流失 {churn} 天。",
        "Thresholds: loyal at {loyal} purchases; dormant after {factor}× the customer's own gap or {dormant} days; churned after {churn} days.",
    ),
    "lifecycle.stages_title": ("各阶段客户数", "Customers per stage"),
    "lifecycle.funnel_title": (
        "生命周期漏斗：潜客 → 新客 → 活跃 → 忠诚",
        "Funnel: lead → new → active → loyal",
    ),
    "lifecycle.funnel_explain": (
        "曾到达该阶段的客户（按购买次数），不论现在处于哪个阶段。",
        "Customers who got at least this far (by purchases), whatever stage they are in now.",
    ),
    "lifecycle.share": ("占潜客", "Share of leads"),
    "lifecycle.flows_title": ("阶段流转（{start} 至 {end}）", "Moves between stages ({start} to {end})"),
    "lifecycle.no_flows": ("这段时间没有客户变换阶段。", "No customer changed stage in this period."),
    "lifecycle.first": ("首次归类", "First placement"),
    "lifecycle.from": ("从", "From"),
    "lifecycle.to": ("到", "To"),
    "lifecycle.customers": ("客户数", "Customers"),
    "lifecycle.stage": ("阶段", "Stage"),
    "lifecycle.start": ("开始", "Start"),
    "lifecycle.end": ("结束", "End"),
    "lifecycle.show": ("查看", "Show"),
    "lifecycle.csv": ("下载 CSV", "Download CSV"),
    "lifecycle.settings_title": ("阶段阈值设置", "Stage thresholds"),
    "lifecycle.settings_explain": (
        "每日 03:15 的扫描与 siyu lifecycle 使用这些阈值；保存后下一次扫描生效。",
        "The daily sweep at 03:15 and siyu lifecycle use these thresholds; a save applies from the next sweep.",
    ),
    "lifecycle.loyal_orders": ("忠诚：购买次数 ≥", "Loyal at purchases ≥"),
    "lifecycle.dormant_factor": ("沉睡：个人购买间隔的倍数", "Dormant: times the customer's own gap"),
    "lifecycle.dormant_days": ("或未购买天数", "or days without a purchase"),
    "lifecycle.churn_days": ("流失：未购买天数", "Churned: days without a purchase"),
    "lifecycle.save_settings": ("保存阈值", "Save thresholds"),
}
