"""The moments pages' messages, key → (zh-CN, en); merged into the catalogue of siyu.web.i18n."""

from __future__ import annotations

MESSAGES: dict[str, tuple[str, str]] = {
    "moments.title": ("朋友圈", "Moments (朋友圈)"),
    "moments.help": (
        "通过企业微信 add_moment_task 创建朋友圈任务：员工在企业微信里确认发表。可见范围按员工和客户标签（已同步的企业标签）；图片上传后 3 天内有效，所以带图片的定时朋友圈须在 3 天内。",
        "Moments tasks created through WeCom's add_moment_task: staff publish them in WeCom. Visible by staff and by customer tag (synced corp tags); uploaded images are valid for 3 days, so a scheduled moment with images must be within 3 days.",
    ),
    "moments.none": ("还没有朋友圈。", "No moments yet."),
    "moments.new": ("新建朋友圈", "New moment"),
    "moments.text": ("文字", "Text"),
    "moments.images": ("图片（JPG/PNG，最多 9 张）", "Images (JPG/PNG, up to 9)"),
    "moments.image_urls": (
        "或图片链接（每行一个 http(s) 地址）",
        "Or image URLs (one http(s) address a line)",
    ),
    "moments.image_urls_help": (
        "服务器下载这些图片后上传到企业微信：须为 JPG/PNG，每张不超过 10 MB，与上传的图片合计最多 9 张。",
        "The server fetches these images and uploads them to WeCom: JPG or PNG, up to 10 MB each, "
        "at most 9 together with the uploaded ones.",
    ),
    "moments.link_image_url": ("或封面图链接", "Or the picture's URL"),
    "moments.video": ("视频（MP4，不超过 10 MB）", "Video (MP4, up to 10 MB)"),
    "moments.link_url": ("或链接地址", "Or a link URL"),
    "moments.link_title": ("链接标题", "Link title"),
    "moments.link_image": ("链接封面图", "Link picture"),
    "moments.senders": ("发表的员工（不选为全部）", "Staff who post it (none: all)"),
    "moments.tags": ("可见的客户标签（不选为全部客户）", "Customer tags who see it (none: all customers)"),
    "moments.scheduled_for": ("定时（{zone}，留空为立即）", "Scheduled for ({zone}; empty: now)"),
    "moments.create": ("创建", "Create"),
    "moments.created": ("创建时间", "Created"),
    "moments.when": ("发表时间", "Scheduled / submitted"),
    "moments.state": ("状态", "State"),
    "moments.state_scheduled": ("定时中", "Scheduled"),
    "moments.state_submitted": ("已提交", "Submitted"),
    "moments.state_published": ("已创建", "Published"),
    "moments.staff_published": ("员工已发表", "Staff published"),
    "moments.staff": ("员工", "Staff"),
    "moments.publish_status": ("发表状态", "Publish status"),
    "moments.published": ("已发表", "Published"),
    "moments.not_published": ("未发表", "Not yet"),
    "moments.no_staff": (
        "任务完成后显示每位员工的发表状态。",
        "Each staff member's status shows once the job is done.",
    ),
    "moments.jobid": ("任务 jobid", "Job id"),
    "moments.moment_id": ("朋友圈 moment_id", "Moment id"),
    "moments.invalid": ("无效的员工或标签", "Invalid staff or tags"),
    "moments.all": ("全部朋友圈", "All moments"),
    "moments.saved": ("已保存。", "Saved."),
}
