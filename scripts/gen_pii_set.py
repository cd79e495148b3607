"""Generate the labelled PII/secret set: realistic texts with gold spans, plus near-misses with none.

Every value is synthetic (random digits with correct check digits, random token bodies behind the
providers' documented prefixes); nothing is copied from other corpora. Deterministic per seed:
seed 1 is the development set used to tune the recognisers, seed 2 the held-out set the test reads.

Run: .venv/bin/python scripts/gen_pii_set.py --seed 2 --out tests/data/pii_labelled.jsonl
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import string
from collections.abc import Callable
from pathlib import Path

from aimds.detect import validators as v

ALNUM = string.ascii_letters + string.digits
UPPER = string.ascii_uppercase
HEX = "0123456789abcdef"

FIRST = ["jane", "ravi", "li", "maria", "lukas", "amelie", "kenji", "fatima", "oliver", "sofia", "mateo", "anna",
         "priya", "noah", "chloe", "yusuf", "elena", "tom", "ines", "david"]
LAST = ["doe", "kumar", "wang", "garcia", "schmidt", "dubois", "tanaka", "haddad", "smith", "rossi", "silva",
        "novak", "sharma", "jensen", "martin", "yilmaz", "petrova", "brown", "costa", "cohen"]
DOMAINS = ["gmail.com", "outlook.com", "proton.me", "yahoo.co.jp", "acme-corp.de", "infosys.co.in", "orange.fr",
           "uni-heidelberg.de", "mail.ru", "web.de", "hotmail.co.uk", "libero.it", "uol.com.br", "fastmail.fm"]


def rdigits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def rstr(rng: random.Random, n: int, alphabet: str = ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def group(s: str, sizes: list[int], sep: str) -> str:
    out, i = [], 0
    for n in sizes:
        out.append(s[i:i + n])
        i += n
    if i < len(s):
        out.append(s[i:])
    return sep.join(p for p in out if p)


# --------------------------------------------------------------------------- value makers (valid)


def email(rng: random.Random) -> str:
    f, last = rng.choice(FIRST), rng.choice(LAST)
    tag = rng.choice(["news", "work"])
    local = rng.choice([f"{f}.{last}", f"{f[0]}{last}", f"{f}{rdigits(rng, 2)}", f"{f}.{last}+{tag}", f"{last}_{f}"])
    return f"{local}@{rng.choice(DOMAINS)}"


def phone(rng: random.Random) -> str:
    def nanp() -> str:
        while True:
            ten = str(rng.randint(2, 9)) + rdigits(rng, 2) + str(rng.randint(2, 9)) + rdigits(rng, 6)
            if v.nanp_ok(ten) and ten[3:6] != "555":
                return ten
    kind = rng.randrange(9)
    if kind == 0:
        t = nanp()
        return f"({t[:3]}) {t[3:6]}-{t[6:]}"
    if kind == 1:
        t = nanp()
        return f"{t[:3]}.{t[3:6]}.{t[6:]}" if rng.random() < 0.5 else f"+1 {t[:3]} {t[3:6]} {t[6:]}"
    if kind == 2:
        return f"+44 20 {rng.randint(3, 8)}{rdigits(rng, 3)} {rdigits(rng, 4)}"
    if kind == 3:
        return f"+49 1{rng.choice('567')}{rdigits(rng, 1)} {rdigits(rng, 8)}"
    if kind == 4:
        return f"+33 {rng.choice('67')} " + " ".join(rdigits(rng, 2) for _ in range(4))
    if kind == 5:
        return f"0{rng.choice('67')} " + " ".join(rdigits(rng, 2) for _ in range(4))
    if kind == 6:
        return f"030 {rdigits(rng, 4)} {rdigits(rng, 4)}"
    if kind == 7:
        return f"+91 9{rdigits(rng, 4)} {rdigits(rng, 5)}"
    return f"+55 11 9{rdigits(rng, 4)}-{rdigits(rng, 4)}"


def card_digits(rng: random.Random) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        p, n = "4" + rdigits(rng, 5), 16
    elif kind == 1:
        p, n = str(rng.randint(51, 55)) + rdigits(rng, 4), 16
    elif kind == 2:
        p, n = str(rng.randint(2221, 2720)) + rdigits(rng, 2), 16
    elif kind == 3:
        p, n = rng.choice(["34", "37"]) + rdigits(rng, 4), 15
    else:
        p, n = rng.choice(["6011", str(rng.randint(3528, 3589))]) + rdigits(rng, 2), 16
    body = p + rdigits(rng, n - 1 - len(p))
    return body + v.luhn_digit(body)


def fmt_card(d: str, rng: random.Random) -> str:
    if len(d) == 15:
        return group(d, [4, 6, 5], rng.choice([" ", "", "-"]))
    return group(d, [4, 4, 4, 4], rng.choice([" ", " ", "", "-"]))


def credit_card(rng: random.Random) -> str:
    return fmt_card(card_digits(rng), rng)


IBAN_SHAPES = {"DE": "n18", "GB": "a4n14", "FR": "n10x11n2", "NL": "a4n10", "ES": "n20", "IT": "a1n10x12",
               "BE": "n12", "CH": "n17", "AT": "n16", "PL": "n24"}


def iban_body(rng: random.Random) -> tuple[str, str]:
    cc = rng.choice(sorted(IBAN_SHAPES))
    shape, out, i = IBAN_SHAPES[cc], "", 0
    while i < len(shape):
        kind = shape[i]
        j = i + 1
        while j < len(shape) and shape[j].isdigit():
            j += 1
        n = int(shape[i + 1:j])
        out += rstr(rng, n, {"n": string.digits, "a": UPPER, "x": UPPER + string.digits}[kind])
        i = j
    return cc, out


def iban(rng: random.Random) -> str:
    cc, bban = iban_body(rng)
    value = cc + v.iban_check(cc, bban) + bban
    return group(value, [4] * 8, " ") if rng.random() < 0.6 else value


def us_ssn(rng: random.Random) -> str:
    while True:
        d = f"{rng.randint(1, 899):03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
        if v.us_ssn(d):
            return f"{d[:3]}-{d[3:5]}-{d[5:]}"


def uk_nino(rng: random.Random) -> str:
    while True:
        s = rng.choice("ABCEGHJKLMNPRSTWXYZ") + rng.choice("ABCEGHJKLMNPRSTWXYZ") + rdigits(rng, 6) + rng.choice("ABCD")
        if v.uk_nino(s) and s[:2] not in ("AB",):
            return group(s, [2, 2, 2, 2, 1], " ") if rng.random() < 0.5 else s


def de_tax_id(rng: random.Random) -> str:
    while True:
        ds = rng.sample("0123456789", 9)
        ds.append(rng.choice(ds))
        rng.shuffle(ds)
        if ds[0] != "0":
            first = "".join(ds)
            value = first + v.de_tax_id_digit(first)
            if v.de_tax_id(value):
                return group(value, [2, 3, 3, 3], " ") if rng.random() < 0.4 else value


def fr_nir(rng: random.Random) -> str:
    dept = rng.choice([f"{rng.randint(1, 95):02d}", "2A", "2B"]) if rng.random() < 0.9 else f"{rng.randint(1, 95):02d}"
    if dept == "20":
        dept = "21"
    body = (f"{rng.choice('12')}{rdigits(rng, 2)}{rng.randint(1, 12):02d}{dept}"
            f"{rng.randint(1, 999):03d}{rng.randint(1, 999):03d}")
    value = body + v.fr_nir_key(body)
    return group(value, [1, 2, 2, 2, 3, 3, 2], " ") if rng.random() < 0.6 else value


def es_dni(rng: random.Random) -> str:
    if rng.random() < 0.3:
        lead = rng.choice("XYZ")
        digits = rdigits(rng, 7)
        n = int(str("XYZ".index(lead)) + digits)
        return f"{lead}{digits}{v.DNI_LETTERS[n % 23]}"
    n = rng.randint(10_000_000, 99_999_999)
    return f"{n}{v.DNI_LETTERS[n % 23]}"


def it_fiscal_code(rng: random.Random) -> str:
    day = rng.randint(1, 28) + (40 if rng.random() < 0.5 else 0)
    body = (rstr(rng, 6, UPPER) + rdigits(rng, 2) + rng.choice("ABCDEHLMPRST") + f"{day:02d}" + rng.choice(UPPER)
            + rdigits(rng, 3))
    return body + v.it_fiscal_code_char(body)


def nl_bsn(rng: random.Random) -> str:
    while True:
        base = str(rng.randint(1, 9)) + rdigits(rng, 7)
        for d in "0123456789":
            if v.nl_bsn(base + d):
                return base + d


def in_aadhaar(rng: random.Random) -> str:
    body = str(rng.randint(2, 9)) + rdigits(rng, 10)
    value = body + v.verhoeff_digit(body)
    return group(value, [4, 4, 4], " ") if rng.random() < 0.7 else value


def br_cpf(rng: random.Random) -> str:
    body = rdigits(rng, 9)
    value = body + v.br_cpf_digits(body)
    return f"{value[:3]}.{value[3:6]}.{value[6:9]}-{value[9:]}" if rng.random() < 0.7 else value


def ipv4(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return rng.choice([f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                           f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"])
    first = rng.choice([31, 46, 51, 62, 77, 81, 89, 91, 104, 142, 151, 185, 193, 212, 217])
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def ipv6(rng: random.Random) -> str:
    groups = [rng.choice(["2a02", "2001", "2a00", "2604", "2c0f"])] + [f"{rng.randint(0, 0xffff):x}" for _ in range(7)]
    if groups[0] == "2001" and groups[1] == "db8":
        groups[1] = "4860"
    if rng.random() < 0.3:
        return "fe80::" + ":".join(groups[4:])
    if rng.random() < 0.3:
        return ":".join(groups[:3]) + "::" + groups[7]
    return ":".join(groups)


def aws_access_key(rng: random.Random) -> str:
    return rng.choice(["AKIA", "ASIA"]) + rstr(rng, 16, UPPER + "234567")


def aws_secret_key(rng: random.Random) -> str:
    return rstr(rng, 40, ALNUM + "/+")


def github_token(rng: random.Random) -> str:
    if rng.random() < 0.2:
        return f"github_pat_{rstr(rng, 22)}_{rstr(rng, 59)}"
    return rng.choice(["ghp", "gho", "ghs", "ghu"]) + "_" + rstr(rng, 36)


def gitlab_token(rng: random.Random) -> str:
    return "glpat-" + rstr(rng, 20, ALNUM + "_-")


def slack_token(rng: random.Random) -> str:
    return f"xox{rng.choice('bp')}-{rdigits(rng, 12)}-{rdigits(rng, 13)}-{rstr(rng, 24)}"


def slack_webhook(rng: random.Random) -> str:
    ids = UPPER + string.digits
    return f"https://hooks.slack.com/services/T{rstr(rng, 8, ids)}/B{rstr(rng, 8, ids)}/{rstr(rng, 24)}"


def stripe_key(rng: random.Random) -> str:
    return rng.choice(["sk_live_", "rk_live_"]) + rstr(rng, rng.choice([24, 32, 99]))


def openai_key(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "sk-proj-" + rstr(rng, rng.choice([48, 64, 120]), ALNUM + "_-")
    return "sk-" + rstr(rng, 20) + "T3BlbkFJ" + rstr(rng, 20)


def anthropic_key(rng: random.Random) -> str:
    return "sk-ant-api03-" + rstr(rng, 93, ALNUM + "_-") + "AA"


def google_api_key(rng: random.Random) -> str:
    return "AIza" + rstr(rng, 35, ALNUM + "_-")


def azure_key(rng: random.Random) -> str:
    return rstr(rng, 86, ALNUM + "+/") + "=="


def twilio_key(rng: random.Random) -> str:
    return "SK" + rstr(rng, 32, HEX)


def sendgrid_key(rng: random.Random) -> str:
    return f"SG.{rstr(rng, 22, ALNUM + '_-')}.{rstr(rng, 43, ALNUM + '_-')}"


def npm_token(rng: random.Random) -> str:
    return "npm_" + rstr(rng, 36)


def pypi_token(rng: random.Random) -> str:
    return "pypi-AgEIcHlwaS5vcmc" + rstr(rng, 60, ALNUM + "_-")


def private_key(rng: random.Random) -> str:
    kind = rng.choice(["RSA ", "EC ", "OPENSSH ", ""])
    lines = [rstr(rng, 64, ALNUM + "+/") for _ in range(rng.randint(3, 8))]
    return f"-----BEGIN {kind}PRIVATE KEY-----\n" + "\n".join(lines) + f"\n-----END {kind}PRIVATE KEY-----"


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()


def jwt(rng: random.Random) -> str:
    header = {"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}
    payload = {"sub": f"user_{rdigits(rng, 5)}", "iat": 1_700_000_000 + rng.randint(0, 10**7),
               "scope": rng.choice(["read", "admin", "read write"])}
    return f"{_b64(header)}.{_b64(payload)}.{rstr(rng, 43, ALNUM + '_-')}"


def _password_value(rng: random.Random) -> str:
    word = rng.choice(["Summer", "Falcon", "Kaffee", "Soleil", "Tiger", "Blue", "Mango", "River", "Nebula", "Orion"])
    return word + rdigits(rng, rng.randint(2, 4)) + rng.choice("!#$%&*?@") + rstr(rng, rng.randint(0, 3))


def database_url(rng: random.Random) -> str:
    scheme = rng.choice(["postgres", "postgresql", "mysql", "mongodb+srv", "redis", "amqp"])
    host = rng.choice(["db.internal", "10.0.3.12", "prod-db-1.cluster-x1.eu-west-1.rds.amazonaws.com", "cache.local",
                       "cluster0.ab1cd.mongodb.net", "mq.prod.svc"])
    user = rng.choice(["app", "svc_reader", "admin", "orders", "etl"])
    pw = rstr(rng, rng.randint(10, 20))
    port = rng.choice(["", ":5432", ":3306", ":6379"])
    return f"{scheme}://{user}:{pw}@{host}{port}/{rng.choice(['orders', 'app', 'prod', '0'])}"


def password(rng: random.Random) -> str:
    return _password_value(rng)


def generic_secret(rng: random.Random) -> str:
    return rstr(rng, rng.choice([24, 32, 40]), ALNUM if rng.random() < 0.6 else HEX)


MAKERS: dict[str, Callable[[random.Random], str]] = {f.__name__: f for f in (
    email, phone, credit_card, iban, us_ssn, uk_nino, de_tax_id, fr_nir, es_dni, it_fiscal_code, nl_bsn,
    in_aadhaar, br_cpf, ipv4, ipv6, aws_access_key, aws_secret_key, github_token, gitlab_token, slack_token,
    slack_webhook, stripe_key, openai_key, anthropic_key, google_api_key, azure_key, twilio_key, sendgrid_key,
    npm_token, pypi_token, private_key, jwt, database_url, password, generic_secret)}

# --------------------------------------------------------------------------- templates ({} is the value)

T: dict[str, list[str]] = {
    "email": ["Hi, you can reach me at {} if anything changes.", "From: {}\nSubject: invoice question",
              "2024-05-02T10:11:12Z INFO user={} action=login ok", "contact_email: \"{}\"",
              "Bitte schreiben Sie an {} für Rückfragen.", "Pouvez-vous envoyer le devis à {} ?",
              "cc {} on the thread please", "Mi correo es {}, gracias."],
    "phone": ["Call me on {} after 6pm.", "my cell is {}", "Téléphone : {}", "WhatsApp {} if urgent",
              "Ruf mich an unter {}", "phone: \"{}\"", "Contact number {} (mobile)", "Il mio cellulare è {}",
              "Reach our on-call at {} tonight"],
    "credit_card": ["Please charge my card {} exp 09/27", "card number: {}", "Visa ending soon, number {}, CVV on back",
                    "payment_card={} status=declined", "Meine Kreditkarte: {}", "numéro de carte {}",
                    "can you check why {} was declined?"],
    "iban": ["Please wire it to IBAN {}", "IBAN: {}", "Bankverbindung: {} (Sparkasse)", "virement sur le compte {}",
             "iban = \"{}\"", "transfer to {} before Friday"],
    "us_ssn": ["My SSN is {} for the credit check.", "SSN: {}", "social security number {} on the W-2",
               "applicant ssn={} dob=1984-03-12"],
    "uk_nino": ["My National Insurance number is {}", "NINO: {}", "NI number {} for payroll"],
    "de_tax_id": ["Meine Steuer-ID ist {}", "Steueridentifikationsnummer: {}", "steuer_id = {}",
                  "Tax ID (Germany): {}"],
    "fr_nir": ["Mon numéro de sécurité sociale est {}", "NIR : {}", "carte vitale n° {}"],
    "es_dni": ["Mi DNI es {}", "NIE: {}", "documento de identidad {}", "DNI/NIE {} del titular"],
    "it_fiscal_code": ["Il mio codice fiscale è {}", "CF: {}", "codice_fiscale={}", "tax code {} on the invoice"],
    "nl_bsn": ["Mijn BSN is {}", "burgerservicenummer: {}", "BSN {} van de aanvrager"],
    "in_aadhaar": ["My Aadhaar number is {}", "Aadhaar: {}", "aadhar no {} for KYC"],
    "br_cpf": ["Meu CPF é {}", "CPF: {}", "cpf do cliente {}"],
    "ipv4": ["Failed password for root from {} port 52144 ssh2", "client ip {} blocked by WAF",
             "GET /login 401 remote_addr={}", "ssh deploy@{}", "host: {}", "my home IP is {}"],
    "ipv6": ["Accepted publickey for git from {} port 40022", "client {} connected", "ipv6_address: {}",
             "ping {} failed"],
    "aws_access_key": ["aws_access_key_id = {}", "export AWS_ACCESS_KEY_ID={}", "found key {} in the logs",
                       "\"AccessKeyId\": \"{}\","],
    "aws_secret_key": ["aws_secret_access_key = {}", "export AWS_SECRET_ACCESS_KEY={}",
                       "AWS_SECRET_ACCESS_KEY: \"{}\""],
    "github_token": ["GITHUB_TOKEN={}", "git remote set-url origin https://{}@github.com/acme/api.git",
                     "use this token {} for the CI", "  token: {}"],
    "gitlab_token": ["PRIVATE-TOKEN: {}", "GITLAB_TOKEN={}", "gitlab token {} expires next month"],
    "slack_token": ["SLACK_BOT_TOKEN={}", "slack token: {}", "client = WebClient(token=\"{}\")"],
    "slack_webhook": ["curl -X POST -d @msg.json {}", "webhook_url: {}", "alerts go to {}"],
    "stripe_key": ["stripe.api_key = \"{}\"", "STRIPE_SECRET_KEY={}", "the live key is {}, don't share it"],
    "openai_key": ["OPENAI_API_KEY={}", "client = OpenAI(api_key=\"{}\")", "my openai key {} stopped working"],
    "anthropic_key": ["ANTHROPIC_API_KEY={}", "x-api-key: {}", "here's my key {} can you test it"],
    "google_api_key": ["https://maps.googleapis.com/maps/api/js?key={}&callback=init", "GOOGLE_API_KEY={}",
                       "apiKey: \"{}\","],
    "azure_key": ["DefaultEndpointsProtocol=https;AccountName=acmelogs;AccountKey={};EndpointSuffix=core.windows.net",
                  "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey={}"],
    "twilio_key": ["TWILIO_API_KEY={}", "twilio key sid {}", "api_key_sid: {}"],
    "sendgrid_key": ["SENDGRID_API_KEY={}", "sg = SendGridAPIClient(\"{}\")"],
    "npm_token": ["//registry.npmjs.org/:_authToken={}", "NPM_TOKEN={}"],
    "pypi_token": ["password = {}", "TWINE_PASSWORD={}", "pypi token {}"],
    "private_key": ["{}", "here is the deploy key:\n{}\nplease add it", "ssh_key: |\n{}"],
    "jwt": ["Authorization: Bearer {}", "token={}", "cookie session={}; Path=/", "my JWT is {}"],
    "database_url": ["DATABASE_URL={}", "db: \"{}\"", "connect with {} and run the migration"],
    "password": ["DB_PASSWORD={}", "my password is {}", "password: \"{}\"", "Passwort: {}", "mot de passe : {}",
                 "senha: {}", "login admin / pwd={}"],
    "generic_secret": ["SECRET_KEY = '{}'", "client_secret: {}", "x-api-key: {}", "Authorization: Bearer {}",
                       "my api key is {}", "webhook_secret={}", "\"apiKey\": \"{}\""],
}

# Weakly validated types need their context word: these types never appear without a template.
CONTEXT_FREE_TEMPLATES = ["{}", "see {} above", "value: {}", "-> {}"]
STRONG = {"email", "credit_card", "iban", "es_dni", "it_fiscal_code", "fr_nir", "br_cpf", "ipv4", "ipv6",
          "aws_access_key", "github_token", "gitlab_token", "slack_token", "slack_webhook", "stripe_key", "openai_key",
          "anthropic_key", "google_api_key", "sendgrid_key", "npm_token", "pypi_token", "private_key", "jwt",
          "database_url"}


def fill(template: str, value: str) -> tuple[str, int, int]:
    i = template.index("{}")
    return template[:i] + value + template[i + 2:], i, i + len(value)


def positive(rng: random.Random, typ: str) -> dict:
    value = MAKERS[typ](rng)
    free = typ in STRONG and typ not in ("ipv4", "ipv6") and not (typ == "br_cpf" and "." not in value)
    pool = T[typ] + (CONTEXT_FREE_TEMPLATES if free else [])
    text, s, e = fill(rng.choice(pool), value)
    return {"text": text, "entities": [{"type": typ, "start": s, "end": e}]}


def combine(rng: random.Random, parts: list[dict]) -> dict:
    sep = rng.choice(["\n", " ", "\n\n", ". "])
    text, ents = "", []
    for p in parts:
        if text:
            text += sep
        off = len(text)
        text += p["text"]
        ents += [{**x, "start": x["start"] + off, "end": x["end"] + off} for x in p["entities"]]
    return {"text": text, "entities": ents}


# --------------------------------------------------------------------------- near-misses (no entity)


def corrupt_digit(rng: random.Random, value: str, ok: Callable[[str], bool]) -> str:
    """Change one digit of ``value`` so that ``ok`` fails (a typo that breaks the checksum)."""
    idx = [i for i, c in enumerate(value) if c.isdigit()]
    while True:
        i = rng.choice(idx)
        new = value[:i] + rng.choice([d for d in "0123456789" if d != value[i]]) + value[i + 1:]
        if not ok(new):
            return new


def invalid_checksum(rng: random.Random) -> str:
    typ = rng.choice(["credit_card", "iban", "de_tax_id", "fr_nir", "nl_bsn", "in_aadhaar", "br_cpf", "it_fiscal_code",
                      "es_dni"])
    value = MAKERS[typ](rng)
    if typ == "it_fiscal_code":
        bad = value[:15] + chr((ord(value[15]) - 65 + rng.randint(1, 25)) % 26 + 65)
    elif typ == "es_dni":
        bad = value[:-1] + rng.choice([c for c in v.DNI_LETTERS if c != value[-1]])
    else:
        bad = corrupt_digit(rng, value, v.VALIDATORS[typ])
    return fill(rng.choice(T[typ]), bad)[0]


def near_miss(rng: random.Random) -> str:
    kind = rng.randrange(18)
    if kind < 4:
        return invalid_checksum(rng)
    if kind == 4:
        return rng.choice([
            f"Order #{rdigits(rng, 3)}-{rdigits(rng, 7)}-{rdigits(rng, 7)} has shipped.",
            f"tracking number 1Z{rstr(rng, 6, UPPER + string.digits)}{rdigits(rng, 10)}",
            f"invoice INV-{rng.randint(2019, 2025)}-{rdigits(rng, 6)} is overdue",
            f"ticket {rdigits(rng, 3)}-{rdigits(rng, 3)}-{rdigits(rng, 4)}-{rdigits(rng, 2)} reopened",
            f"ISBN 978-{rdigits(rng, 1)}-{rdigits(rng, 2)}-{rdigits(rng, 6)}-{rdigits(rng, 1)}",
            f"Order number {rdigits(rng, 11)} confirmed",
        ])
    if kind == 5:
        return rng.choice([
            f"upgrade to version {rng.randint(1, 12)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}.{rng.randint(0, 300)}",
            f"pip install requests=={rng.randint(1, 3)}.{rng.randint(0, 32)}.{rng.randint(0, 9)}",
            f"release v{rng.randint(1, 9)}.{rng.randint(0, 99)}.{rng.randint(0, 99)} is out",
            f"SNMP OID 1.3.6.1.4.1.{rdigits(rng, 4)}.1.2",
        ])
    if kind == 6:
        u = "-".join(rstr(rng, n, HEX) for n in (8, 4, 4, 4, 12))
        return rng.choice([f"request_id={u}", f"trace {u} took 312 ms", f"\"id\": \"{u}\""])
    if kind == 7:
        h = rstr(rng, rng.choice([40, 64, 32]), HEX)
        return rng.choice([f"sha256: {h}", f"commit {h}", f"checksum {h}  dist.tar.gz", f"md5sum = {h}",
                           f"etag: \"{h}\"", f"password_hash = {h}"])
    if kind == 8:
        return rng.choice([
            "The docs use AKIAIOSFODNN7EXAMPLE as the access key id.",
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "Use the test card 4242 4242 4242 4242 with any future date.",
            "Test Visa: 4111 1111 1111 1111, test Amex: 3782 822463 10005",
            "Send the form to user@example.com or admin@example.org.",
            f"In the movie he calls ({rng.randint(201, 989)}) 555-01{rdigits(rng, 2)}.",
            f"Example: 192.0.2.{rng.randint(1, 254)} and 2001:db8::{rng.randint(1, 99)}",
            "Stripe test key sk_test_4eC39HqLyjWDarjtT1zdp7dc works in sandbox only.",
            "api_key: <YOUR_API_KEY>",
            "OPENAI_API_KEY=sk-...your key here...",
            "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "password: ********",
            "DATABASE_URL=postgres://user:password@localhost:5432/mydb",
            "SSN format is 123-45-6789 (example)",
            "Connect to 127.0.0.1:8000 and ::1",
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
            "IBAN example: DE89 3704 0044 0532 0130 00",
        ])
    if kind == 9:
        return rng.choice([
            f"Meeting on {rng.randint(2020, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} at "
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
            f"released on {rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.{rng.randint(2000, 2026)}",
            f"population {rng.randint(1, 99)},{rdigits(rng, 3)},{rdigits(rng, 3)}",
            f"amount due: {rng.randint(1, 999)},{rdigits(rng, 3)}.{rdigits(rng, 2)} EUR",
            f"MAC {':'.join(rstr(rng, 2, HEX) for _ in range(6))} is offline",
            f"Room 0{rdigits(rng, 3)}, building {rng.randint(1, 9)}",
        ])
    if kind == 10:
        return rng.choice([
            "tokenizer = AutoTokenizer.from_pretrained('bert-base-uncased')",
            f"max_tokens = {rng.choice([256, 1024, 4096])}",
            "token = secrets.token_hex(16)",
            "password = getpass.getpass('Password: ')",
            "api_key = os.environ['OPENAI_API_KEY']",
            "SECRET_KEY = env('DJANGO_SECRET_KEY')",
            "if password_length < 12: raise ValueError('too short')",
            "Your password is incorrect, please try again.",
            "Forgot password? Click the reset link.",
            "std::vector<int> v; v.push_back(1);",
            "@property\ndef name(self): return self._name",
            "npm install lodash@4.17.21",
            "<img src=\"logo@2x.png\">",
            f"\"session_timeout\": {rng.randint(60, 7200)}",
        ])
    if kind == 11:
        blob = base64.b64encode(bytes(rng.getrandbits(8) for _ in range(60))).decode()
        return rng.choice([f"data:image/png;base64,{blob}", f"attachment content (base64): {blob}"])
    if kind == 12:
        return rng.choice([
            f"The meeting is in room {rng.randint(100, 999)} at {rng.randint(1, 12)} pm.",
            "Can you summarise the attached report about password managers?",
            "How do I rotate an AWS access key safely?",
            "What is the format of an IBAN and how is it validated?",
            "Explain how JWT signatures work.",
            "Our phone lines are open Monday to Friday.",
            f"The build took {rng.randint(2, 59)} minutes and {rng.randint(1, 59)} seconds.",
        ])
    if kind == 13:
        return f"serial no. {rdigits(rng, 4)}-{rdigits(rng, 4)}-{rdigits(rng, 4)}"
    if kind == 14:
        return f"coordinates {rng.uniform(-90, 90):.6f}, {rng.uniform(-180, 180):.6f}"
    if kind in (15, 16):  # random identifiers in neutral prose: some pass a checksum by chance
        return rng.choice([
            f"Transaction {rdigits(rng, 16)} completed at 14:02.",
            f"parcel {rdigits(rng, 4)} {rdigits(rng, 4)} {rdigits(rng, 4)} left the depot",
            f"customer no. {rdigits(rng, 9)}",
            f"catalogue item {rdigits(rng, 3)}-{rdigits(rng, 2)}-{rdigits(rng, 4)}",
            f"batch {rdigits(rng, 11)} passed QA",
            f"Your confirmation code is {rdigits(rng, 12)}.",
            f"lot {rdigits(rng, 8)}{rng.choice(UPPER)} expires 2026",
            f"ref {rstr(rng, 2, UPPER)}{rdigits(rng, 2)} {rstr(rng, 4, UPPER + string.digits)} {rdigits(rng, 8)}",
        ])
    return f"Version {rng.randint(1, 9)}.{rng.randint(0, 9)} build {rdigits(rng, 9)} compiled"


def generate(seed: int, per_type: int = 20, multi: int = 120, misses: int = 260) -> list[dict]:
    """The labelled rows for ``seed``: single-entity texts, multi-entity texts, near-misses (shuffled)."""
    rng = random.Random(seed)
    rows = [positive(rng, typ) for typ in MAKERS for _ in range(per_type)]
    types = sorted(MAKERS)
    for _ in range(multi):
        rows.append(combine(rng, [positive(rng, rng.choice(types)) for _ in range(rng.randint(2, 3))]))
    rows += [{"text": near_miss(rng), "entities": []} for _ in range(misses)]
    for _ in range(40):  # a near-miss next to a real entity
        rows.append(combine(rng, [{"text": near_miss(rng), "entities": []}, positive(rng, rng.choice(types))]))
    rng.shuffle(rows)
    return rows


def main() -> None:
    """Write the set for ``--seed`` to ``--out`` as JSON lines."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("tests/data/pii_labelled.jsonl"))
    args = ap.parse_args()
    rows = generate(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} texts, {sum(len(r['entities']) for r in rows)} entities -> {args.out}")


if __name__ == "__main__":
    main()
