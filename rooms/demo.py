"""Demo directory: a plausible city government (Guangzhou's 11 districts, 21 departments).

Loaded by ``suimeet demo`` and ``suimeet serve --demo``. Names are in Simplified Chinese;
people and their email addresses are invented (``@demo.suimeet.example``), deterministic
for a given seed so that a demo looks the same every time it is loaded.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field

from sqlalchemy import func, select

from rooms.credentials import hash_password, mint_token
from rooms.db import Database
from rooms.models import Account, Person, Role, Room, Terminal, Unit, UnitKind

CITY = ("广州市人民政府办公厅", "市府办")
DISTRICTS = [
    "越秀区",
    "海珠区",
    "荔湾区",
    "天河区",
    "白云区",
    "黄埔区",
    "番禺区",
    "花都区",
    "南沙区",
    "从化区",
    "增城区",
]
DEPARTMENTS = [
    ("广州市发展和改革委员会", "市发改委"),
    ("广州市教育局", "市教育局"),
    ("广州市科学技术局", "市科技局"),
    ("广州市工业和信息化局", "市工信局"),
    ("广州市公安局", "市公安局"),
    ("广州市民政局", "市民政局"),
    ("广州市司法局", "市司法局"),
    ("广州市财政局", "市财政局"),
    ("广州市人力资源和社会保障局", "市人社局"),
    ("广州市规划和自然资源局", "市规划资源局"),
    ("广州市生态环境局", "市生态环境局"),
    ("广州市住房和城乡建设局", "市住建局"),
    ("广州市交通运输局", "市交通运输局"),
    ("广州市水务局", "市水务局"),
    ("广州市农业农村局", "市农业农村局"),
    ("广州市商务局", "市商务局"),
    ("广州市文化广电旅游局", "市文广旅局"),
    ("广州市卫生健康委员会", "市卫健委"),
    ("广州市应急管理局", "市应急管理局"),
    ("广州市市场监督管理局", "市市场监管局"),
    ("广州市政务服务和数据管理局", "市政数局"),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段钱汤尹黎易常武乔贺赖龚文"  # noqa: E501
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建国志文辉颖婷晓雪梅琳健斌宇浩凯鹏"
TITLES = ["主任", "副主任", "局长", "副局长", "处长", "副处长", "科长", "主任科员", "科员", "秘书"]
PINYIN_HINT = "abcdefghijklmnopqrstuvwxyz"

DEMO_ACCOUNTS = (
    ("admin@demo.suimeet.example", Role.ADMIN, "系统管理员"),
    ("secretariat@demo.suimeet.example", Role.SECRETARIAT, "市府办秘书处"),
    ("staff@demo.suimeet.example", Role.STAFF, "普通工作人员"),
)


@dataclass
class DemoResult:
    loaded: bool
    accounts: list[tuple[str, str, str]] = field(default_factory=list)  # email, role, password
    counts: dict[str, int] = field(default_factory=dict)


async def load_demo(
    db: Database, *, seed: int = 2026, people_per_unit: int = 6, password: str | None = None
) -> DemoResult:
    """Fill an empty directory; do nothing if units exist already."""
    rng = random.Random(seed)
    async with db.write() as session:
        if await session.scalar(select(func.count()).select_from(Unit)):
            return DemoResult(loaded=False)
        city = Unit(name=CITY[0], short_name=CITY[1], kind=UnitKind.CITY)
        session.add(city)
        await session.flush()
        units: list[Unit] = [city]
        for name in DISTRICTS:
            units.append(
                Unit(
                    name=f"广州市{name}人民政府",
                    short_name=name,
                    kind=UnitKind.DISTRICT,
                    parent_id=city.id,
                )
            )
        for name, short in DEPARTMENTS:
            units.append(
                Unit(name=name, short_name=short, kind=UnitKind.DEPARTMENT, parent_id=city.id)
            )
        session.add_all(units[1:])
        await session.flush()

        people: list[Person] = []
        serial = 0
        for unit in units:
            for _ in range(people_per_unit):
                serial += 1
                name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
                people.append(
                    Person(
                        name=name,
                        email=f"user{serial:04d}@demo.suimeet.example",
                        phone=f"020-8{rng.randrange(1000000, 9999999)}",
                        title=rng.choice(TITLES),
                        unit_id=unit.id,
                    )
                )
        session.add_all(people)

        rooms: list[Room] = []
        for unit in units:
            short = unit.short_name or unit.name
            rooms.append(
                Room(
                    unit_id=unit.id,
                    name=f"{short}视频会议室",
                    location=f"{unit.name}办公楼三楼",
                    capacity=rng.choice((20, 30, 40)),
                    equipment=["视频终端", "摄像头", "麦克风", "投影仪"],
                )
            )
        rooms += [
            Room(
                unit_id=city.id,
                name="市府常务会议室",
                location="市政府大院1号楼二楼",
                capacity=60,
                equipment=["视频终端", "摄像头", "麦克风阵列", "LED大屏"],
            ),
            Room(
                unit_id=city.id,
                name="市府第一会议室",
                location="市政府大院1号楼一楼",
                capacity=200,
                equipment=["视频终端", "摄像头", "同声传译", "LED大屏"],
            ),
            Room(
                unit_id=city.id,
                name="应急指挥中心",
                location="市政府大院3号楼",
                capacity=50,
                equipment=["视频终端", "摄像头", "大屏拼接墙"],
            ),
        ]
        session.add_all(rooms)
        await session.flush()
        terminals = []
        for room in rooms:
            token = mint_token("smr")  # demo tokens are not shown: rotate one to use it
            terminals.append(
                Terminal(
                    room_id=room.id,
                    name=f"{room.name}终端",
                    model=rng.choice(("华为 TE40", "宝利通 G7500", "PC 终端")),
                    token_prefix=token.prefix,
                    token_hash=token.hash,
                )
            )
        session.add_all(terminals)

        result = DemoResult(loaded=True)
        for email, role, name in DEMO_ACCOUNTS:
            pw = password or secrets.token_urlsafe(12)
            person = Person(name=name, email=email, unit_id=city.id, title="工作人员")
            session.add(person)
            await session.flush()
            session.add(
                Account(
                    person_id=person.id, email=email, password_hash=hash_password(pw), role=role
                )
            )
            result.accounts.append((email, role.value, pw))
        result.counts = {
            "units": len(units),
            "people": len(people) + len(DEMO_ACCOUNTS),
            "rooms": len(rooms),
            "terminals": len(terminals),
        }
        return result
