"""Synthetic demo data for `make run`: fictional elders, contacts, devices and staff. Never real people.

Idempotent: running it again adds nothing that exists (matched by unique keys). Generated passwords are written
to ``<data dir>/demo-credentials.txt`` (mode 600) so an evaluator can register a softphone.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.db.session import Database
from callcenter.devices.models import Device, DeviceKind
from callcenter.devices.services import generate_sip_password
from callcenter.elders.models import Contact, ContactRole, Elder, LivingSituation
from callcenter.providers.models import ProviderStaff, ServiceProvider, ServiceType
from callcenter.users.models import Role, User
from callcenter.users.passwords import hash_password, sip_ha1
from callcenter.users.services import ADMIN_USERNAME, ensure_admin

# Fictional people; phone numbers in the 1770000xxxx range, addresses in an invented community.
DEMO_ELDERS = [
    {
        "full_name": "张桂兰", "gender": "女", "birth_date": dt.date(1941, 3, 8), "phone": "17700000101",
        "address": "示范市东城区和平社区 3 号楼 2 单元 101", "community": "和平社区", "district": "东城区",
        "latitude": 34.035, "longitude": 113.852, "living_situation": LivingSituation.ALONE, "care_level": 3,
        "conditions": ["高血压", "2 型糖尿病"], "medications": ["氨氯地平 5mg 每日一次", "二甲双胍 0.5g 每日两次"],
        "allergies": ["青霉素"],
        "contacts": [
            (ContactRole.RELATIVE, "李建国", "17700000201", "儿子", 1),
            (ContactRole.RELATIVE, "李秀梅", "17700000202", "女儿", 2),
            (ContactRole.DOCTOR, "王医生（和平社区卫生服务站）", "17700000301", None, 1),
            (ContactRole.SOCIAL_WORKER, "陈社工", "17700000401", None, 1),
        ],
        "device": ("demo-1001", DeviceKind.ONE_TOUCH, "17700000501"),
        "provider": "示范市和平居家养老服务站",
    },
    {
        "full_name": "刘德福", "gender": "男", "birth_date": dt.date(1938, 11, 20), "phone": "17700000102",
        "address": "示范市东城区和平社区 7 号楼 1 单元 302", "community": "和平社区", "district": "东城区",
        "latitude": 34.036, "longitude": 113.855, "living_situation": LivingSituation.EMPTY_NEST, "care_level": 2,
        "conditions": ["冠心病"], "medications": ["阿司匹林 100mg 每日一次"], "allergies": [],
        "contacts": [
            (ContactRole.RELATIVE, "刘晓燕", "17700000203", "女儿", 1),
            (ContactRole.DOCTOR, "王医生（和平社区卫生服务站）", "17700000301", None, 1),
            (ContactRole.SOCIAL_WORKER, "陈社工", "17700000401", None, 1),
        ],
        "device": ("demo-1002", DeviceKind.PENDANT, "17700000502"),
    },
]
# Fictional providers (seed 5.11): one serving the demo community, one city-wide, one elsewhere.
DEMO_PROVIDERS = [
    ("示范市和平居家养老服务站", "17700000601", [ServiceType.MEAL_DELIVERY, ServiceType.CLEANING, ServiceType.BATHING,
                                               ServiceType.COMPANIONSHIP], ["和平社区"]),
    ("示范市安康护理中心", "17700000602", [ServiceType.REHAB_NURSING, ServiceType.RESPITE_CARE, ServiceType.BATHING,
                                         ServiceType.HOME_MEDICAL], []),
    ("示范市便民维修队", "17700000603", [ServiceType.REPAIR, ServiceType.CLEANING], ["幸福社区"]),
]
# Registry details of the providers above (seed 5.11): location, qualification, licence, fees, staff.
DEMO_PROVIDER_DETAILS = {
    "示范市和平居家养老服务站": {
        "latitude": 34.036, "longitude": 113.850, "contact_person": "周站长", "qualification": "居家养老服务机构备案",
        "licence_number": "DEMO-JY-0001", "licence_expires_on": dt.date(2029, 12, 31), "rating": 4.6,
        "fees": {"meal_delivery": {"price_yuan": 12.0, "unit": "餐"}, "cleaning": {"price_yuan": 40.0, "unit": "次"},
                 "bathing": {"price_yuan": 60.0, "unit": "次"}},
        "staff": [("孙护理员", "17700000701", ["bathing", "cleaning"]), ("钱送餐员", "17700000702", ["meal_delivery"])],
    },
    "示范市安康护理中心": {
        "latitude": 34.060, "longitude": 113.900, "contact_person": "吴主任", "qualification": "护理院执业许可",
        "licence_number": "DEMO-HL-0002", "licence_expires_on": dt.date(2028, 6, 30), "rating": 4.2,
        "fees": {"rehab_nursing": {"price_yuan": 120.0, "unit": "次"}},
        "staff": [("郑康复师", "17700000703", ["rehab_nursing"])],
    },
}
# A provider-portal account (role provider) of the community station: it sees only that provider's orders.
DEMO_PROVIDER_ACCOUNT = ("provider01", "和平服务站派单员", "示范市和平居家养老服务站")
DEMO_AGENTS = [("agent01", "坐席一号", "8001"), ("agent02", "坐席二号", "8002")]
DEMO_SUPERVISOR = ("supervisor01", "值班班长")


def _password() -> str:
    return secrets.token_urlsafe(12)


async def seed(db: Database, data_dir: Path, admin_password: str | None) -> list[str]:
    """Insert the demo data; returns lines describing the credentials that were created."""
    created: list[str] = []
    async with db.transaction() as session:
        password = admin_password or _password()
        if await ensure_admin(session, password):
            created.append(f"panel admin: {ADMIN_USERNAME} / {password}")
        for name, phone, services, communities in DEMO_PROVIDERS:
            if await session.scalar(select(ServiceProvider.id).where(ServiceProvider.name == name)) is None:
                details = dict(DEMO_PROVIDER_DETAILS.get(name, {}))
                staff = details.pop("staff", [])
                provider = ServiceProvider(name=name, phone=phone, services=[s.value for s in services],
                                           communities=communities, active=True, **details)
                provider.staff = [ProviderStaff(name=n, phone=p, skills=k) for n, p, k in staff]
                session.add(provider)
        await session.flush()
        for spec in DEMO_ELDERS:
            created += await _seed_elder(session, spec)
        for username, name, extension in DEMO_AGENTS:
            created += await _seed_user(session, username, name, Role.AGENT, extension)
        created += await _seed_user(session, DEMO_SUPERVISOR[0], DEMO_SUPERVISOR[1], Role.SUPERVISOR, None)
        username, name, provider_name = DEMO_PROVIDER_ACCOUNT
        provider_id = await session.scalar(select(ServiceProvider.id).where(ServiceProvider.name == provider_name))
        created += await _seed_user(session, username, name, Role.PROVIDER, None, provider_id=provider_id)
    if created:
        path = data_dir / "demo-credentials.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write("\n".join(created) + "\n")
    return created


async def _seed_elder(session: AsyncSession, spec: dict[str, object]) -> list[str]:
    sip_username, kind, device_phone = spec["device"]  # type: ignore[misc]
    if await session.scalar(select(Device.id).where(Device.sip_username == sip_username)) is not None:
        return []
    fields = {k: v for k, v in spec.items() if k not in ("contacts", "device", "provider")}
    elder = Elder(**fields)
    if "provider" in spec:
        elder.preferred_provider_id = await session.scalar(
            select(ServiceProvider.id).where(ServiceProvider.name == spec["provider"]))
    elder.contacts = [
        Contact(role=role, name=name, phone=phone, relationship_to_elder=relation, priority=priority)
        for role, name, phone, relation, priority in spec["contacts"]  # type: ignore[attr-defined]
    ]
    session.add(elder)
    await session.flush()
    password = generate_sip_password()  # as the API does for a device without an operator's password
    session.add(Device(elder_id=elder.id, kind=kind, sip_username=sip_username,
                       sip_ha1=sip_ha1(sip_username, password), phone_number=device_phone))
    return [f"device {sip_username} ({kind.value}) of {elder.full_name}: SIP {sip_username} / {password}"]


async def _seed_user(session: AsyncSession, username: str, name: str, role: Role, extension: str | None, *,
                     provider_id: int | None = None) -> list[str]:
    if await session.scalar(select(User.id).where(User.username == username)) is not None:
        return []
    password, sip_password = _password(), _password()
    session.add(User(username=username, display_name=name, password_hash=hash_password(password), role=role,
                     extension=extension, sip_ha1=sip_ha1(extension, sip_password) if extension else None,
                     provider_id=provider_id))
    line = f"{role.value} {username}: panel password {password}"
    if extension:
        line += f"; phone SIP {extension} / {sip_password}"
    return [line]
