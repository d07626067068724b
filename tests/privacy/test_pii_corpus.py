"""PII recall on generated corpora: what survives redaction, and which look-alikes it touches.

Each seed builds its own corpus: PII values (e-mail addresses, ASCII and internationalised;
phone numbers, US ones with assigned and unassigned area codes and international ones; cards,
IBANs, SSNs, IP addresses, secrets) and look-alikes that are no PII (dates, timestamps,
versions, prices, order numbers, zip+4 codes, measurements, numbers in code), each put into
prose, chat turns, JSON strings, CSV lines or code. The default pipeline redacts every text.
A value counts as redacted only if nothing of it is left, not a digit nor a letter; a
look-alike counts as untouched only if its text comes out unchanged. The figures are printed
for each seed; the targets are recall >= 0.99 and untouched look-alikes >= 0.95.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import phonenumbers
import pytest

from closedloop.privacy import RedactionPipeline

SEEDS = [1, 2, 3, 4, 5]
RECALL_TARGET = 0.99
UNTOUCHED_TARGET = 0.95

# Where a value or look-alike goes ("{}"). No template holds a digit, so any digit left where
# a value was is a leak.
TEMPLATES = [
    "Please reach me at {} if anything changes.",
    "Hi team, the customer ({}) asked for a refund.",
    "Feedback: great support! Follow up via {} anytime.",
    "Bitte kontaktieren Sie mich unter {}, danke.",
    "Mon contact : {}. Merci !",
    "请联系{}，谢谢。",  # noqa: RUF001 (a full-width comma, as Chinese text has it)
    "Στοιχεία επικοινωνίας: {}.",
    "User: my details are {}\nAssistant: Thanks, I have updated your profile.",
    "[user] {} <- that's me\n[assistant] Got it.",
    '{"customer": {"contact": "{}", "tier": "gold"}}',
    '{"role": "user", "content": "Reach me at {} please"}',
    "name,contact,notes\nJane Roe,{},prefers mornings",
    '"Roe, Jane";"{}";"vip"',
    'level=info msg="callback requested" contact={} region=emea',
    'send_reply(to="{}", urgent=True)',
    "<td>{}</td>",
    "- contact: {}\n- status: open",
    "Contact:{}",
]
PLACEHOLDER = re.compile(r"<[A-Z]+>")
WORD = re.compile(r"[^\W_]+")  # letters and digits, in any script


@dataclass(frozen=True)
class Case:
    """One value or look-alike, between the two halves of its template."""

    kind: str
    before: str
    value: str
    after: str

    @property
    def text(self) -> str:
        return f"{self.before}{self.value}{self.after}"


def leaked(case: Case, redacted: str) -> bool:
    """Whether any letter or digit of the value is left in ``redacted``."""
    if (
        redacted.startswith(case.before)
        and redacted.endswith(case.after)
        and len(redacted) >= len(case.before) + len(case.after)
    ):
        where_it_was = redacted[len(case.before) : len(redacted) - len(case.after)]
        return WORD.search(PLACEHOLDER.sub("", where_it_was)) is not None
    # The redactor took some of the template too: no piece of the value may be left anywhere.
    left = PLACEHOLDER.sub(" ", redacted)
    template = case.before + case.after
    return any(word in left and word not in template for word in WORD.findall(case.value))


# --- PII values ----------------------------------------------------------------------------

Generator = Callable[[random.Random], str]


def digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def alphanumeric(rng: random.Random, count: int, alphabet: str = "") -> str:
    return "".join(
        rng.choice(alphabet or string.ascii_letters + string.digits) for _ in range(count)
    )


FIRST = ["jane", "john", "maria", "wei", "amir", "olga", "kenji", "fatima", "lars", "priya"]
LAST = ["doe", "smith", "garcia", "chen", "haddad", "ivanova", "tanaka", "khan", "berg", "rao"]
DOMAINS = ["example.com", "mail.example.co.uk", "corp.example.org", "example.io", "uni.example.edu"]
INTERNATIONAL_LOCAL = [
    "josé.müller",
    "zoë",
    "françois.dupont",
    "søren",
    "łukasz.wiśniewski",
    "dvořák",
    "ñandú",
    "用户",
    "张伟",
    "θσερ",
    "δοκιμή",
    "пользователь",
    "иван.петров",
    "उपयोगकर्ता",
    "ユーザー",
    "사용자",
    "john.o'reilly",
    "o'brien.patrick",
    "first&last",
]
INTERNATIONAL_DOMAINS = [
    "beispiel.de",
    "bücher.de",
    "例子.广告",
    "例子.中国",
    "παράδειγμα.ελ",
    "пример.рф",
    "例え.テスト",
    "उदाहरण.भारत",
    "münchen.example",
    "xn--bcher-kva.example",
    "correo.españa.es",
]


def ascii_email(rng: random.Random) -> str:
    first, last, domain = rng.choice(FIRST), rng.choice(LAST), rng.choice(DOMAINS)
    local = rng.choice(
        [f"{first}.{last}", f"{first}+{rng.choice(['news', 'shop', 'x'])}", f"{first}_{last}99"]
    )
    return f"{local}@{domain}"


def international_email(rng: random.Random) -> str:
    """A non-ASCII local part, an IDN domain, or both."""
    local = rng.choice([*INTERNATIONAL_LOCAL, rng.choice(FIRST)])
    domain = rng.choice([*INTERNATIONAL_DOMAINS, rng.choice(DOMAINS)])
    if local.isascii() and domain.isascii():
        local = rng.choice(INTERNATIONAL_LOCAL)
    return f"{local}@{domain}"


@cache
def us_number_is_valid(number: str) -> bool:
    return phonenumbers.is_valid_number(phonenumbers.parse(number, "US"))


def us_digits(rng: random.Random, *, assigned: bool) -> tuple[str, str, str]:
    """Area code, exchange and line of a US number whose area code is (not) assigned."""
    while True:
        area, exchange, line = (
            str(rng.randint(200, 999)),
            str(rng.randint(200, 999)),
            digits(rng, 4),
        )
        if us_number_is_valid(area + exchange + line) == assigned:
            return area, exchange, line


US_FORMATS = [
    "({}) {}-{}",
    "{}-{}-{}",
    "{}.{}.{}",
    "{} {} {}",
    "({}){}-{}",
    "+1 ({}) {}-{}",
    "+1 {}-{}-{}",
    "+1{}{}{}",
    "+1.{}.{}.{}",
    "1-{}-{}-{}",
    "1 ({}) {}-{}",
    "{}-{}-{} ext. 42",
]


def us_phone(*, assigned: bool) -> Generator:
    def phone(rng: random.Random) -> str:
        return rng.choice(US_FORMATS).format(*us_digits(rng, assigned=assigned))

    return phone


def bare_us_phone(rng: random.Random) -> str:
    """Bare digit runs are redacted only if valid: ids and timestamps look like that too."""
    return "".join(us_digits(rng, assigned=True))


INTERNATIONAL_REGIONS = ["GB", "DE", "FR", "JP", "AU", "IN", "BR", "ES", "IT", "NL", "CH", "MX"]


def international_phone(rng: random.Random) -> str:
    """A number of another country, written with its country code, its last digits drawn."""
    region = rng.choice(INTERNATIONAL_REGIONS)
    kind = rng.choice(
        [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
    )
    example = phonenumbers.example_number_for_type(region, kind)
    national = phonenumbers.national_significant_number(example)
    drawn = phonenumbers.parse(f"+{example.country_code}{national[:-4]}{digits(rng, 4)}")
    written = rng.choice(
        [phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164]
    )
    return phonenumbers.format_number(drawn, written)


def typographic_phone(rng: random.Random) -> str:
    """A phone number as word processors and pasted text have it: no-break spaces, en dashes,
    or full-width digits and brackets."""
    written = rng.choice([us_phone(assigned=rng.random() < 0.5), international_phone])(rng)
    style = rng.choice(["no-break spaces and en dashes", "full width"])
    if style == "full width":
        return written.translate(FULL_WIDTH)
    return written.replace(" ", "\xa0").replace("-", "\u2013")


FULL_WIDTH = str.maketrans("0123456789()+", "０１２３４５６７８９（）＋")  # noqa: RUF001


def luhn_completed(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char) * (1 if index % 2 else 2)
        total += digit - 9 if digit > 9 else digit
    return body + str(-total % 10)


CARD_BRANDS = [("4", 16, (4, 4, 4, 4)), ("51", 16, (4, 4, 4, 4)), ("37", 15, (4, 6, 5))]


def card(rng: random.Random) -> str:
    prefix, length, groups = rng.choice(CARD_BRANDS)
    number = luhn_completed(prefix + digits(rng, length - len(prefix) - 1))
    separator = rng.choice([" ", "-", ""])
    parts, start = [], 0
    for size in groups:
        parts.append(number[start : start + size])
        start += size
    return separator.join(parts)


# Country and account layout: "n" digits, "a" upper-case letters.
IBAN_LAYOUTS = {"DE": "n18", "GB": "a4n14", "FR": "n23", "NL": "a4n10", "ES": "n20", "BE": "n12"}


def iban(rng: random.Random) -> str:
    country = rng.choice(list(IBAN_LAYOUTS))
    account = ""
    for kind, count in re.findall(r"([an])(\d+)", IBAN_LAYOUTS[country]):
        alphabet = string.ascii_uppercase if kind == "a" else string.digits
        account += alphanumeric(rng, int(count), alphabet)
    numeric = "".join(str(int(char, 36)) for char in account + country) + "00"
    compact = f"{country}{98 - int(numeric) % 97:02d}{account}"
    if rng.random() < 0.5:
        return compact
    return " ".join(compact[start : start + 4] for start in range(0, len(compact), 4))


def ssn(rng: random.Random) -> str:
    area = rng.choice([n for n in range(1, 900) if n != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def ipv4(rng: random.Random) -> str:
    return ".".join(
        str(part) for part in [rng.randint(1, 223), *(rng.randint(0, 255) for _ in range(3))]
    )


def ipv6(rng: random.Random) -> str:
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    if rng.random() < 0.5:
        return ":".join(groups)
    return f"2001:db8::{groups[0]}:{groups[1]}"


def secret(rng: random.Random) -> str:
    token_chars = string.ascii_letters + string.digits
    payload = base64.urlsafe_b64encode(json.dumps({"sub": digits(rng, 8)}).encode()).decode()
    return rng.choice(
        [
            "sk-" + alphanumeric(rng, 48),
            "sk-proj-" + alphanumeric(rng, 40, token_chars + "_-"),
            "AKIA" + alphanumeric(rng, 16, string.ascii_uppercase + string.digits),
            "ghp_" + alphanumeric(rng, 36),
            f"xoxb-{digits(rng, 12)}-{digits(rng, 13)}-{alphanumeric(rng, 24)}",
            "eyJhbGciOiJIUzI1NiJ9." + payload.rstrip("=") + "." + alphanumeric(rng, 43),
        ]
    )


# (kind, generator, how many per corpus)
VALUES: list[tuple[str, Generator, int]] = [
    ("email", ascii_email, 30),
    ("email, internationalised", international_email, 50),
    ("phone, US, unassigned area code", us_phone(assigned=False), 60),
    ("phone, US, assigned area code", us_phone(assigned=True), 40),
    ("phone, US, bare and valid", bare_us_phone, 10),
    ("phone, international", international_phone, 50),
    ("phone, typographic", typographic_phone, 20),
    ("card", card, 30),
    ("iban", iban, 25),
    ("ssn", ssn, 20),
    ("ipv4", ipv4, 30),
    ("ipv6", ipv6, 10),
    ("secret", secret, 25),
]

# --- Look-alikes -----------------------------------------------------------------------------


def year(rng: random.Random) -> int:
    return rng.randint(1990, 2030)


def two(rng: random.Random, low: int, high: int) -> str:
    return f"{rng.randint(low, high):02d}"


def bad_card(rng: random.Random) -> str:
    number = card(rng)
    last = int(number[-1])
    return number[:-1] + str((last + rng.randint(1, 9)) % 10)


LOOK_ALIKES: list[tuple[str, Generator]] = [
    ("iso date", lambda r: f"{year(r)}-{two(r, 1, 12)}-{two(r, 1, 28)}"),
    ("us date", lambda r: f"{two(r, 1, 12)}/{two(r, 1, 28)}/{year(r)}"),
    ("eu date", lambda r: f"{two(r, 1, 28)}.{two(r, 1, 12)}.{year(r)}"),
    ("time", lambda r: f"{two(r, 0, 23)}:{two(r, 0, 59)}:{two(r, 0, 59)}"),
    (
        "iso timestamp",
        lambda r: (
            f"{year(r)}-{two(r, 1, 12)}-{two(r, 1, 28)}T{two(r, 0, 23)}:"
            f"{two(r, 0, 59)}:{two(r, 0, 59)}Z"
        ),
    ),
    (
        "log timestamp",
        lambda r: (
            f"{year(r)}-{two(r, 1, 12)}-{two(r, 1, 28)} {two(r, 0, 23)}:"
            f"{two(r, 0, 59)}:{two(r, 0, 59)}.{digits(r, 3)}"
        ),
    ),
    ("unix time", lambda r: str(r.randint(1_000_000_000, 1_999_999_999))),
    ("unix time in ms", lambda r: str(r.randint(1_000_000_000_000, 1_999_999_999_999))),
    ("version", lambda r: f"{r.randint(0, 20)}.{r.randint(0, 40)}.{r.randint(0, 200)}"),
    (
        "semver",
        lambda r: f"v{r.randint(0, 9)}.{r.randint(0, 30)}.{r.randint(0, 99)}-rc.{r.randint(1, 9)}",
    ),
    (
        "build number",
        lambda r: f"{r.randint(6, 12)}.0.{r.randint(10000, 22999)}.{r.randint(100, 5000)}",
    ),
    ("price", lambda r: f"${r.randint(1, 9)},{digits(r, 3)}.{digits(r, 2)}"),
    ("price", lambda r: f"€{r.randint(1, 999)},{digits(r, 2)}"),
    ("price", lambda r: f"USD {r.randint(10, 999)},{digits(r, 3)}.00"),
    ("order number", lambda r: f"ORD-{year(r)}-{digits(r, 6)}"),
    ("order number", lambda r: f"INV-{digits(r, 6)}-{digits(r, 2)}"),
    ("ticket", lambda r: f"#{r.randint(10_000, 99_999_999)}"),
    ("zip+4", lambda r: f"{digits(r, 5)}-{digits(r, 4)}"),
    (
        "measurements",
        lambda r: ", ".join(f"{r.uniform(0, 100):.1f}" for _ in range(r.randint(3, 6))),
    ),
    (
        "measurements",
        lambda r: " ".join(
            str(r.choice([16, 32, 64, 128, 256, 512, 1024, 2048])) for _ in range(3)
        ),
    ),
    ("dimensions", lambda r: f"{r.randint(100, 4000)}x{r.randint(100, 3000)}"),
    ("coordinates", lambda r: f"{r.uniform(-90, 90):.4f}, {r.uniform(-180, 180):.4f}"),
    ("percentage", lambda r: f"{r.uniform(0, 100):.1f}%"),
    ("duration", lambda r: f"{two(r, 0, 23)}:{two(r, 0, 59)}:{two(r, 0, 59)}.{digits(r, 3)}"),
    ("code", lambda r: f"range(0, {r.randint(1000, 99999)})"),
    ("code", lambda r: f"timeout={r.randint(1000, 120000)}"),
    ("code", lambda r: f"np.zeros(({r.randint(1, 1024)}, {r.randint(1, 1024)}, 3))"),
    ("code", lambda r: f"0x{r.randint(0, 2**48):012x}"),
    ("code", lambda r: f"port {r.randint(1024, 65535)}"),
    ("isbn", lambda r: f"978-{r.randint(0, 9)}-{digits(r, 2)}-{digits(r, 6)}-{r.randint(0, 9)}"),
    ("card with a bad check digit", bad_card),
    ("uuid", lambda r: "-".join(alphanumeric(r, n, "0123456789abcdef") for n in (8, 4, 4, 4, 12))),
    ("large number", lambda r: f"{r.randint(1, 999)},{digits(r, 3)},{digits(r, 3)}"),
    ("code", lambda r: "INT_MAX = 2147483647"),
    ("oid", lambda r: f"1.3.6.1.4.1.{r.randint(1, 99999)}.{r.randint(1, 99)}"),
    ("cas number", lambda r: f"{r.randint(50, 99999)}-{digits(r, 2)}-{r.randint(0, 9)}"),
    ("year range", lambda r: f"{year(r)}-{year(r)}"),
    ("opening hours", lambda r: f"{r.randint(6, 10)}:00-{r.randint(16, 22)}:30"),
    ("page", lambda r: f"page {r.randint(1, 99)} of {r.randint(100, 999)}"),
    ("package", lambda r: f"lodash@{r.randint(1, 5)}.{r.randint(0, 20)}.{r.randint(0, 30)}"),
    ("version with build metadata", lambda r: "app:1.4.2+201905281530"),
    ("part number", lambda r: "555-123-4567-A"),
]


# --- The corpus and its figures ------------------------------------------------------------


def corpus(seed: int) -> tuple[list[Case], list[Case]]:
    """The PII values and the look-alikes of one seed, each in a template."""
    rng = random.Random(seed)

    def placed(kind: str, value: str) -> Case:
        before, after = rng.choice(TEMPLATES).split("{}")
        return Case(kind, before, value, after)

    values = [placed(kind, make(rng)) for kind, make, count in VALUES for _ in range(count)]
    look_alikes = [placed(*pick(rng)) for _ in range(300)]
    return values, look_alikes


def pick(rng: random.Random) -> tuple[str, str]:
    kind, make = rng.choice(LOOK_ALIKES)
    return kind, make(rng)


@pytest.fixture(scope="module")
def pipeline() -> RedactionPipeline:
    return RedactionPipeline()


@pytest.mark.parametrize("seed", SEEDS)
def test_recall_and_untouched_look_alikes(
    pipeline: RedactionPipeline, seed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    values, look_alikes = corpus(seed)
    missed = [case for case in values if leaked(case, pipeline.redact(case.text).text)]
    touched = [case for case in look_alikes if pipeline.redact(case.text).text != case.text]
    recall = 1 - len(missed) / len(values)
    untouched = 1 - len(touched) / len(look_alikes)
    figures = (
        f"seed {seed}: recall {recall:.3f} ({len(values) - len(missed)}/{len(values)}), "
        f"look-alikes untouched {untouched:.3f} "
        f"({len(look_alikes) - len(touched)}/{len(look_alikes)})"
    )
    with capsys.disabled():
        print(
            f"\n{figures}; missed by kind {dict(Counter(case.kind for case in missed))}, "
            f"touched by kind {dict(Counter(case.kind for case in touched))}"
        )
    assert recall >= RECALL_TARGET, f"{figures}; missed {[case.value for case in missed]}"
    assert untouched >= UNTOUCHED_TARGET, f"{figures}; touched {[case.value for case in touched]}"


def test_the_corpus_holds_non_ascii_addresses_and_unassigned_area_codes() -> None:
    values, _ = corpus(SEEDS[0])
    emails = [case.value for case in values if case.kind.startswith("email")]
    phones = [case.value for case in values if case.kind.startswith("phone, US, un")]
    assert sum(not email.isascii() for email in emails) >= 40
    assert all(
        not phonenumbers.is_valid_number(phonenumbers.parse(phone, "US")) for phone in phones
    )


def test_a_partial_leak_counts_as_a_miss() -> None:
    case = Case("email", "mail ", "josé.müller@beispiel.de", " now")
    assert leaked(case, "mail josé.mü<EMAIL> now")
    assert not leaked(case, "mail <EMAIL> now")
    assert leaked(Case("phone", "call ", "+1 (335) 516-7104", ""), "call +1 <PHONE>")
    chinese = Case("email", "请联系", "用户@例子.广告", "，谢谢。")  # noqa: RUF001
    assert not leaked(chinese, "<EMAIL>，谢谢。")  # noqa: RUF001 (the context went too)


@pytest.mark.parametrize(
    ("before", "value", "after"),
    [
        ("请联系我们的客服经理张三先生", "zhang.san@example.com", "我们会尽快回复您的问题谢谢。"),
        ("연락처는", "hong@example.kr", "입니다"),
        ("メールアドレスは", "taro@example.jp", "です。"),
        ("email ", "john.o'reilly@company.com", " now"),
        ("'", "bob@example.com", "'"),
    ],
)
def test_the_context_around_an_address_is_untouched(
    pipeline: RedactionPipeline, before: str, value: str, after: str
) -> None:
    assert pipeline.redact(f"{before}{value}{after}").text == f"{before}<EMAIL>{after}"
