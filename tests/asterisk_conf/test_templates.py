"""The rendered Asterisk configuration against its contracts (no Asterisk needed).

1. Channel-variable and CDR field names are exactly those of ``agi/channel_vars.py``.
2. ``extensions.conf`` passes ``asterisklint dialplan-check``.
3. Fail closed: the only ``Dial`` a call reaches is in the bridge context, reached only when
   ``PRIVNUM_ACTION`` is exactly ``bridge`` (it dials a Local channel whose other half dials
   the trunk); the fail and reject contexts never dial. (The click-to-call of an extension
   binding dials a Local channel into ``privnum-inbound`` itself, which decides as for any
   call: no number leaves Asterisk there.)
4. Buyer numbers stay out of CDRs: no application on a channel whose CDR is kept gets the
   number to dial in its arguments; the caller ID is privnum's recorded caller from the decision
   on (masked by the dialplan on the fail path); the CSV leaves ``clid`` empty.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agi import channel_vars as cv
from routing.reasons import Reason
from scripts.asterisk_read import AsteriskConfig
from scripts.asterisk_render import MODULES, LabPhone, RenderOptions, fill, render

LAB = RenderOptions(
    fastagi=("127.0.0.1:4573", "127.0.0.1:4574"),
    ami_secret="lab-secret-1",
    dial_template="PJSIP/{number}",
    lab_phones=(LabPhone("13800000001", "phone-pass-1"), LabPhone("13900000001", "phone-pass-2")),
    system_name="pnlab",
    verbose_log=True,
)
PRODUCTION = RenderOptions(
    fastagi=("10.0.0.5:4573", "10.0.0.6:4573", "10.0.0.7:4573"),
    ami_secret="prod-secret-xyz",
    trunk_host="192.0.2.10:5060",
)

# asterisklint findings we accept: (code, text in the message). asterisklint 0.4 predates some
# Asterisk applications; add an entry only for an app that really exists in Asterisk 22.
LINT_ALLOWED: frozenset[tuple[str, str]] = frozenset({
    ("E_APP_MISSING", "'MSet'"),
    ("E_FUNC_MISSING", "'CDR_PROP'"),  # func_cdr, Asterisk 12 and later
})
LINT_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+) (?P<code>[A-Z][A-Z0-9_]+): (?P<msg>.*)$")


@pytest.fixture(params=["lab", "production"])
def rendered(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    options = LAB if request.param == "lab" else PRODUCTION
    render(options, tmp_path)
    return tmp_path


def contexts(text: str) -> dict[str, list[str]]:
    """Context name -> its items as ``name => value`` lines, read with pyst2's config parser
    (comments and blank lines gone)."""
    config = AsteriskConfig(text, "extensions.conf")
    return {name: [f"{key} => {value}" for key, value in config.items(name)]
            for name in config.section_names}


def app_of(line: str) -> tuple[str, str] | None:
    """(application, data) of an ``exten =>``/``same =>`` line."""
    m = re.match(r"^(?:exten\s*=>\s*[^,]+,|same\s*=>\s*)[^,]+,([A-Za-z]+)\((.*)\)$", line)
    return (m[1], m[2]) if m else None


# ------------------------------------------------------------------ 1. names


def test_every_privnum_variable_in_the_templates_is_defined_and_every_defined_one_is_used(
    rendered: Path,
) -> None:
    text = "\n".join(p.read_text() for p in sorted(rendered.iterdir()))
    used = set(re.findall(r"\bPRIVNUM_[A-Z0-9_]+\b", text))
    assert used == set(cv.ALL) | set(cv.CLICK) | set(cv.EXTENSION_INPUT)


def test_cdr_fields_match_channel_vars(rendered: Path) -> None:
    dialplan = (rendered / "extensions.conf").read_text()
    set_fields = set(re.findall(r"Set\(CDR\(([a-z_]+)\)=", dialplan))
    assert set_fields == set(cv.CDR_FIELDS)
    every_pn = set(re.findall(r"\bpn_[a-z_]+\b", "\n".join(
        p.read_text() for p in rendered.iterdir())))
    assert every_pn == set(cv.CDR_FIELDS)
    # each field is copied from its channel variable
    for field, var in cv.CDR_FROM_CHANNEL.items():
        assert f"Set(CDR({field})=${{{var}}})" in dialplan
    assert f"Set(CDR({cv.CDR_CALLER})=${{CALLERID(num)}})" in dialplan


def test_cdr_manager_and_csv_export_every_custom_field(rendered: Path) -> None:
    mappings = (rendered / "cdr_manager.conf").read_text()
    for field, header in cv.CDR_AMI_HEADERS.items():
        assert re.search(rf"^{field} => {header}$", mappings, re.M)
    custom = (rendered / "cdr_custom.conf").read_text()
    line = next(x for x in custom.splitlines() if x.startswith(cv.CDR_CSV_FILE + " => "))
    cells = line.split(" => ", 1)[1].split(",")
    assert len(cells) == len(cv.CDR_CSV_COLUMNS)
    for cell, column in zip(cells, cv.CDR_CSV_COLUMNS, strict=True):
        expected = '""' if column in cv.CDR_CSV_EMPTY else f"${{CSV_QUOTE(${{CDR({column})}})}}"
        assert cell == expected
    assert {"clid"} == cv.CDR_CSV_EMPTY  # the caller's presented name and number
    assert not set(cv.CDR_FIELDS) & cv.CDR_CSV_EMPTY


def test_dialplan_action_and_reason_literals_are_the_shared_ones() -> None:
    dialplan = _render_text(LAB, "extensions.conf")
    compared = set(re.findall(rf'"\$\{{{cv.ACTION}\}}" = "([a-z]+)"', dialplan))
    assert compared == set(cv.ACTIONS)
    fail_reason = re.search(r"Set\(CDR\(pn_reason\)=([a-z_]+)\)", dialplan)
    assert fail_reason is not None
    assert Reason(fail_reason[1]) is Reason.ROUTING_ERROR


def test_the_parsed_configuration_holds_the_channel_vars_contract(rendered: Path) -> None:
    """The same contract as above, read item by item with pyst2's parser."""
    read = {name: AsteriskConfig.read(rendered / name) for name in
            ("extensions.conf", "cdr_manager.conf", "cdr_custom.conf", "modules.conf")}
    copied = {step.data.split("=", 1)[0][len("CDR("):-1]: step.data.split("=", 1)[1]
              for step in read["extensions.conf"].dialplan("privnum-cdr") if step.app == "Set"}
    assert copied == {**{f: f"${{{v}}}" for f, v in cv.CDR_FROM_CHANNEL.items()},
                      cv.CDR_CALLER: "${CALLERID(num)}"}
    assert dict(read["cdr_manager.conf"].items("mappings")) == cv.CDR_AMI_HEADERS
    (name, template), = read["cdr_custom.conf"].items("mappings")
    assert name == cv.CDR_CSV_FILE
    assert template.split(",") == [
        '""' if column in cv.CDR_CSV_EMPTY else f"${{CSV_QUOTE(${{CDR({column})}})}}"
        for column in cv.CDR_CSV_COLUMNS]
    assert read["modules.conf"].values("modules", "autoload") == ["no"]
    assert tuple(read["modules.conf"].values("modules", "load")) == MODULES


# ------------------------------------------------------------------ 2. asterisklint


def _asterisklint() -> str:
    exe = Path(sys.executable).with_name("asterisklint")
    found = str(exe) if exe.exists() else shutil.which("asterisklint")
    if found is None:
        pytest.fail("asterisklint is not installed (it is in the test extras)")
    return found


def test_rendered_dialplan_passes_asterisklint(rendered: Path) -> None:
    res = subprocess.run([_asterisklint(), "dialplan-check", "extensions.conf"],
                         cwd=rendered, capture_output=True, text=True, timeout=60, check=False)
    problems = []
    for line in (res.stdout + res.stderr).splitlines():
        if not line.strip():
            continue
        m = LINT_LINE.match(line)
        if m is None:
            problems.append(f"unparsable asterisklint output: {line}")
        elif not any(code == m["code"] and text in m["msg"] for code, text in LINT_ALLOWED):
            problems.append(line)
    assert problems == []


# ------------------------------------------------------------------ 3. fail closed


def _render_text(options: RenderOptions, name: str) -> str:
    from tempfile import TemporaryDirectory

    with TemporaryDirectory() as tmp:
        render(options, Path(tmp))
        return (Path(tmp) / name).read_text()


def test_the_only_dials_are_the_bridge_and_its_local_channel(rendered: Path) -> None:
    ctx = contexts((rendered / "extensions.conf").read_text())
    dials = [(name, line) for name, lines in ctx.items() for line in lines
             if (app := app_of(line)) and app[0] == "Dial"]
    click = [line for name, line in dials if name == "privnum-click"]
    assert click == [f"same => n,Dial(Local/${{EXTEN}}@privnum-inbound/n,,"
                     f"D(ww${{{cv.CLICK_EXT}}}))"]
    dials = [(name, line) for name, line in dials if name != "privnum-click"]
    assert [name for name, _ in dials] == ["privnum-bridge", "privnum-dial"]
    (_, outer), (_, inner) = dials
    assert f"L(${{{cv.DIAL_LIMIT}}})" in outer  # the limit, with the warning when one is set
    assert f"b(privnum-predial^s^1(${{{cv.CALLERID}}}))" in outer
    # The number is not in the arguments of the Dial on the caller's channel (its CDR's
    # lastdata): a Local channel without optimisation ("/n") takes the call to privnum-dial.
    assert "PRIVNUM_" + "DIAL_NUMBER" not in outer and cv.DIAL_NUMBER not in outer
    assert ",Dial(Local/out@privnum-dial/n," in outer
    assert f"${{{cv.DIAL_NUMBER}}}" in inner
    assert f"b(privnum-predial^s^1(${{{cv.CALLERID}}}))" in inner
    # privnum-dial is reached from that Dial only, and its CDR is off before it dials
    mentions = [name for name, lines in ctx.items() for line in lines if "privnum-dial" in line]
    assert mentions == ["privnum-bridge"]
    dial_apps = [a for line in ctx["privnum-dial"] if (a := app_of(line))]
    assert dial_apps[0] == ("Set", "CDR_PROP(disable)=1")
    assert [app for app, _ in dial_apps].index("Dial") > 0
    assert ("Set", f"{cv.DIAL_NUMBER}=") in dial_apps  # forgotten once dialled
    bridge_apps = [a for line in ctx["privnum-bridge"] if (a := app_of(line))]
    assert ("Set", f"{cv.DIAL_NUMBER}=") in bridge_apps
    # the trunk channel's own CDR (about the callee) is off as well
    predial = [a for line in ctx["privnum-predial"] if (a := app_of(line))]
    assert ("Set", "CDR_PROP(disable)=1") in predial


def test_no_kept_cdr_records_the_number_to_dial(rendered: Path) -> None:
    """Every application privnum's dialplan runs with the number in its arguments runs on
    privnum-dial's channel, whose CDR is disabled first (the Local channel's second half)."""
    ctx = contexts((rendered / "extensions.conf").read_text())
    for name, lines in ctx.items():
        for line in lines:
            app = app_of(line)
            if app and f"${{{cv.DIAL_NUMBER}}}" in app[1] and app[0] != "GotoIf":
                assert name == "privnum-dial", line
    # GotoIf's arguments are the evaluated condition (0 or 1), never the number itself
    for lines in ctx.values():
        for line in lines:
            app = app_of(line)
            if app and app[0] == "GotoIf" and cv.DIAL_NUMBER in app[1]:
                assert app[1].startswith(f'$[${{REGEX("^[+]?[0-9]+$" ${{{cv.DIAL_NUMBER}}})}}')


def test_fail_and_reject_never_reach_a_dial(rendered: Path) -> None:
    ctx = contexts((rendered / "extensions.conf").read_text())
    for name in ("privnum-fail", "privnum-reject"):
        apps = [a for line in ctx[name] if (a := app_of(line))]
        assert apps, name
        assert not any(app in {"Dial", "Goto", "GotoIf", "Gosub", "Macro"}
                       and "privnum-bridge" in data for app, data in apps), name
        assert "Dial" not in {app for app, _ in apps}
        assert apps[-1][0] == "Hangup"
    fail_apps = [a for line in ctx["privnum-fail"] if (a := app_of(line))]
    assert ("Hangup", "38") in fail_apps
    assert any(app == "Playback" for app, _ in fail_apps)


def test_bridge_is_reached_only_when_action_is_exactly_bridge(rendered: Path) -> None:
    ctx = contexts((rendered / "extensions.conf").read_text())
    into_bridge = [(name, app, data) for name, lines in ctx.items() for line in lines
                   if (a := app_of(line)) for app, data in [a] if "privnum-bridge" in data]
    assert into_bridge == [(
        "privnum-inbound", "GotoIf",
        f'$["${{{cv.ACTION}}}" = "bridge"]?privnum-bridge,${{EXTEN}},1',
    )]
    inbound = [a for line in ctx["privnum-inbound"] if (a := app_of(line))]
    assert inbound[-1] == ("Goto", "privnum-fail,${EXTEN},1")  # unknown action


def test_every_fastagi_host_is_tried_in_order_then_fail(rendered: Path) -> None:
    options = LAB if "13800000001" in (rendered / "pjsip.conf").read_text() else PRODUCTION
    ctx = contexts((rendered / "extensions.conf").read_text())
    apps = [a for line in ctx["privnum-inbound"] if (a := app_of(line))]
    agis = [data for app, data in apps if app == "AGI"]
    assert agis == [f"agi://{hp}/route,${{CHANNEL(linkedid)}},${{{cv.EXT_ENTERED}}},"
                    f"${{{cv.EXT_TRY}}}" for hp in options.fastagi]
    for i, (app, _) in enumerate(apps):
        if app == "AGI":
            assert apps[i - 1] == ("Gosub", "privnum-clear,s,1")  # no stale answer survives
            assert apps[i + 1] == ("GotoIf", '$["${AGISTATUS}" = "SUCCESS"]?decide')
    last_agi = max(i for i, (app, _) in enumerate(apps) if app == "AGI")
    assert apps[last_agi + 2] == ("Goto", "privnum-fail,${EXTEN},1")
    clear_apps = [a for line in ctx["privnum-clear"] if (a := app_of(line))]
    cleared = {data.split("=")[0] for app, data in clear_apps if app == "Set"}
    assert cleared == set(cv.ALL)


def test_caller_id_changes_only_where_the_contract_says(rendered: Path) -> None:
    """Outbound channel: X (pre-dial handler). Inbound channel: privnum's recorded caller at
    ``decide``, the dialplan's mask on the fail path, A on a click-to-call. Nowhere else."""
    ctx = contexts((rendered / "extensions.conf").read_text())
    changed: dict[str, list[str]] = {}
    for name, lines in ctx.items():
        for line in lines:
            app = app_of(line)
            if app and app[0] == "Set" and re.match(r"(CALLERID|CONNECTEDLINE)\(", app[1]):
                changed.setdefault(name, []).append(app[1])
    assert set(changed) == {"privnum-predial", "privnum-inbound", "privnum-fail",
                            "privnum-click"}
    for fn in ("CONNECTEDLINE(num,i)", "CONNECTEDLINE(name,i)", "CALLERID(num)",
               "CALLERID(name)"):
        assert f"{fn}=${{ARG1}}" in changed["privnum-predial"]
    assert changed["privnum-inbound"] == [
        f"CALLERID(num)=${{FILTER(0-9*+,${{{cv.CDR_CALLERID}}})}}", "CALLERID(name)="]
    assert changed["privnum-click"] == [f"CALLERID(num)=${{{cv.CLICK_CALLER}}}",
                                        "CALLERID(name)="]
    fail = changed["privnum-fail"]
    assert fail[0].startswith("CALLERID(num)=${IF(") and fail[1] == "CALLERID(name)="
    # set at "decide", before anything else runs on a decided call (only a request to collect
    # an extension, which is no decision and asks privnum again on the caller's own ID, goes
    # first)
    inbound = [a for line in ctx["privnum-inbound"] if (a := app_of(line))]
    decide = next(i for i, line in enumerate(ctx["privnum-inbound"]) if "(decide)" in line)
    assert f'"${{{cv.ACTION}}}" = "{cv.ACTION_COLLECT}"' in ctx["privnum-inbound"][decide]
    assert "CALLERID(num)" in ctx["privnum-inbound"][decide + 1]
    assert inbound[-3][0] == inbound[-2][0] == "GotoIf"
    # the fail path masks before the CDR copies the caller
    fail_apps = [a for line in ctx["privnum-fail"] if (a := app_of(line))]
    assert fail_apps.index(("Set", f"CDR({cv.CDR_CALLER})=${{CALLERID(num)}}")) > 1


def test_click_to_call_enters_the_inbound_dialplan_as_a(rendered: Path) -> None:
    ctx = contexts((rendered / "extensions.conf").read_text())
    apps = [a for line in ctx["privnum-click"] if (a := app_of(line))]
    assert apps[0] == ("NoOp", f"privnum: click-to-call for binding ${{{cv.CLICK_BINDING}}}")
    assert apps[1] == ("GotoIf", f'$[${{REGEX("^[+]?[0-9]+$" ${{{cv.CLICK_CALLER}}})}} = 0]'
                                 "?privnum-fail,${EXTEN},1")
    assert ("Goto", "privnum-inbound,${EXTEN},1") in apps
    # An extension binding: its extension (digits only, else the fail path) goes as DTMF
    # into privnum-inbound through a Local channel, once privnum's prompt answers.
    dial = [i for i, (app, _) in enumerate(apps) if app == "Dial"]
    assert len(dial) == 1
    assert apps[dial[0] - 1] == ("GotoIf", f'$[${{REGEX("^[0-9]{{1,4}}$" ${{{cv.CLICK_EXT}}})}}'
                                           " = 0]?privnum-fail,${EXTEN},1")
    assert apps[dial[0]] == ("Dial", f"Local/${{EXTEN}}@privnum-inbound/n,,"
                                     f"D(ww${{{cv.CLICK_EXT}}})")


# ------------------------------------------------------------------ other files


def test_manager_is_least_privilege_and_loopback(rendered: Path) -> None:
    text = (rendered / "manager.conf").read_text()
    assert "bindaddr=127.0.0.1" in text
    assert re.search(r"^read=cdr,system$", text, re.M)
    assert re.search(r"^write=originate$", text, re.M)
    assert "deny=0.0.0.0/0.0.0.0" in text
    assert (rendered / "manager.conf").stat().st_mode & 0o007 == 0


def test_cel_stays_off(rendered: Path) -> None:
    """CEL would record every channel, the Local channel's dialling half included (its Dial
    holds the number, and CEL has no per-channel switch like CDR_PROP(disable))."""
    text = (rendered / "cel.conf").read_text()
    assert re.search(r"^enable=no$", text, re.M)
    loaded = re.findall(r"^load => (\S+)$", (rendered / "modules.conf").read_text(), re.M)
    assert not [m for m in loaded if m.startswith("cel_")]


def test_modules_are_explicit_and_agi_can_load(rendered: Path) -> None:
    text = (rendered / "modules.conf").read_text()
    assert "autoload=no" in text
    loaded = re.findall(r"^load => (\S+)$", text, re.M)
    assert loaded == list(MODULES)
    for needed in ("res_speech.so", "res_agi.so", "pbx_config.so", "chan_pjsip.so",
                   "res_pjsip_pubsub.so", "cdr_manager.so", "res_cdrel_custom.so",
                   "cdr_custom.so", "app_stack.so", "func_strings.so"):
        assert needed in loaded
    assert loaded.index("res_speech.so") < loaded.index("res_agi.so")


def test_pjsip_lab_phones_and_production_trunk(tmp_path: Path) -> None:
    render(LAB, tmp_path / "lab")
    lab = (tmp_path / "lab" / "pjsip.conf").read_text()
    assert "[privnum-trunk]" not in lab
    for phone in LAB.lab_phones:
        assert f"[{phone.number}]" in lab
        assert f"password={phone.password}" in lab
    assert "bind=127.0.0.1:5060" in lab
    render(PRODUCTION, tmp_path / "prod")
    prod = (tmp_path / "prod" / "pjsip.conf").read_text()
    assert "[privnum-trunk]" in prod and "transport=privnum-udp" in prod
    assert "trust_id_inbound=no" in prod
    assert "contact=sip:192.0.2.10:5060" in prod
    assert "match=192.0.2.10" in prod
    dial = _render_text(PRODUCTION, "extensions.conf")
    assert f"Dial(PJSIP/${{{cv.DIAL_NUMBER}}}@privnum-trunk,,b(" in dial
    assert "Dial(Local/out@privnum-dial/n,45,L(" in dial


def test_default_render_has_a_sample_trunk(tmp_path: Path) -> None:
    render(RenderOptions(ami_secret="good-secret-1"), tmp_path)
    pjsip = (tmp_path / "pjsip.conf").read_text()
    assert "SAMPLE ONLY" in pjsip
    assert "contact=sip:192.0.2.1:5060" in pjsip


def test_no_placeholder_survives_rendering(rendered: Path) -> None:
    for path in rendered.iterdir():
        assert "@@" not in path.read_text(), path.name


@pytest.mark.parametrize("bad", [
    {"ami_secret": "short"},
    {"ami_secret": "has\nnewline-secret"},
    {"ami_secret": "semi;colon-secret"},
    {"fastagi": ("127.0.0.1",)},
    {"fastagi": ()},
    {"dial_template": "PJSIP/trunk"},
    {"dial_template": "PJSIP/{number},30"},
    {"sip_bind": "localhost"},
    {"fail_prompt": "x&y"},
    {"lab_phones": (LabPhone("138\n", "password-1"),)},
    {"system_name": "bad name"},
])
def test_invalid_options_are_rejected(bad: dict[str, object]) -> None:
    base: dict[str, object] = {"ami_secret": "good-secret-1"}
    with pytest.raises(ValueError):
        RenderOptions(**{**base, **bad})  # type: ignore[arg-type]


def test_fill_rejects_unknown_and_unfilled_placeholders() -> None:
    assert fill("a @@x@@ b ${EXTEN}", {"x": "1"}) == "a 1 b ${EXTEN}"
    with pytest.raises(ValueError, match="@@y@@"):
        fill("@@y@@", {"x": "1"})
    with pytest.raises(ValueError):
        fill("@@X@@", {})


# ------------------------------------------------------------------ numbers the dialplan takes

X_FORMS = ("17000000001", "+8617000000001", "700123456789012", "86700123456789012",
           "+86700123456789012", "0086700123456789012")


def extension_regex(pattern: str) -> re.Pattern[str]:
    """An Asterisk extension pattern (``_`` form: X Z N, ``[...]``, ``.`` and ``!``) as a regex."""
    if not pattern.startswith("_"):
        return re.compile(re.escape(pattern))
    out, i = [], 1
    while i < len(pattern):
        ch = pattern[i]
        if ch == "[":
            end = pattern.index("]", i)
            out.append("[" + re.escape(pattern[i + 1:end]).replace("\\-", "-") + "]")
            i = end
        else:
            out.append({"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}.get(
                ch.upper(), re.escape(ch)))
        i += 1
    return re.compile("".join(out))


def test_every_privnum_context_takes_every_form_of_x_including_700_numbers(
        rendered: Path) -> None:
    ctx = contexts((rendered / "extensions.conf").read_text())
    for name in ("privnum-inbound", "privnum-bridge", "privnum-reject", "privnum-fail"):
        patterns = [m[1] for line in ctx[name] if (m := re.match(r"^exten\s*=>\s*([^,]+),", line))]
        assert patterns, name
        for x in X_FORMS:
            assert any(extension_regex(p).fullmatch(x) for p in patterns), (name, x)
    # what the bridge checks before Dial: the dial number and the X presented as caller ID
    checks = re.findall(r'REGEX\("([^"]+)" \$\{(PRIVNUM_[A-Z_]+)\}\)',
                        "\n".join(ctx["privnum-bridge"]))
    number_checks = {var: rx for rx, var in checks if var in (cv.DIAL_NUMBER, cv.CALLERID)}
    assert set(number_checks) == {cv.DIAL_NUMBER, cv.CALLERID}
    for x in X_FORMS:
        assert re.search(number_checks[cv.CALLERID], x), x
