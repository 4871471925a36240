"""Checks the built book and the README the way `make test` does (scripts/test-docs.sh):

- every internal link of the book and the README leads to a page that exists, and to an
  anchor on it that exists;
- every YAML example in the book and the README that is a suite or a noise profile (it starts
  with the `# yaml-language-server: $schema=...` line naming its schema) passes `voicesim
  validate` and check-jsonschema against the committed schema; every other YAML block parses,
  and none is a suite or a profile without that line;
- the bundled examples (examples/, fixtures/noise/) pass check-jsonschema, and a mistyped
  field in one is refused by both validators (so the checks above can fail);
- real `results.jsonl` lines written by the tests (target/tmp/results-*.jsonl) pass
  check-jsonschema against the results schema;
- an editor's YAML language server, opening `examples/orders.yaml`, finds its schema by the
  file's first line: no error as it is, an error for a misspelt field, and completion of a
  step's fields.

Usage: python3 scripts/check-docs.py VOICESIM CHECK_JSONSCHEMA YAML_LANGUAGE_SERVER_FOLDER
Run from the repository's root after `mdbook build docs` and `cargo test`.
"""

import html.parser
import json
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "target" / "book"
DOCS = ROOT / "docs"
SCHEMAS = DOCS / "schemas"
SCHEMA_LINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.S | re.M)
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")

failures: list[str] = []


def fail(message: str) -> None:
    failures.append(message)


class Anchors(html.parser.HTMLParser):
    """The ids of a page, and the links it holds."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.ids.add(value)
            if name in ("href", "src") and value:
                self.links.append(value)


def parse_page(path: Path) -> Anchors:
    page = Anchors()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def external(link: str) -> bool:
    return bool(urlsplit(link).scheme) or link.startswith("//")


def check_book_links() -> dict[Path, Anchors]:
    if not (BOOK / "index.html").is_file():
        fail(f"{BOOK}/index.html is missing: build the book first (mdbook build docs)")
        return {}
    pages = {p: parse_page(p) for p in BOOK.rglob("*.html")}
    for page, parsed in pages.items():
        # print.html repeats every page, 404.html is served from the site's root.
        if page.name in ("print.html", "404.html"):
            continue
        for link in parsed.links:
            if external(link) or link.startswith(("mailto:", "javascript:")):
                continue
            parts = urlsplit(link)
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            name = f"{page.relative_to(BOOK)}: link {link!r}"
            if not target.exists():
                fail(f"{name}: no such page in the book")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else parse_page(target).ids
                if unquote(parts.fragment) not in ids:
                    fail(f"{name}: no anchor #{parts.fragment} on that page")
    return pages


def check_readme_links(pages: dict[Path, Anchors]) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    for line_no, line in enumerate(text.splitlines(), 1):
        for link in MD_LINK.findall(line):
            if external(link) or link.startswith("mailto:"):
                continue
            parts = urlsplit(link)
            place = f"README.md:{line_no}: link {link!r}"
            if not parts.path:
                fail(f"{place}: an anchor in the README itself; link to the book's page instead")
                continue
            target = (ROOT / unquote(parts.path)).resolve()
            if not target.exists():
                fail(f"{place}: no such file")
                continue
            if parts.fragment:
                if target.suffix != ".md" or DOCS not in target.parents:
                    fail(f"{place}: anchors are checked only on the book's pages")
                    continue
                built = BOOK / target.relative_to(DOCS).with_suffix(".html")
                if built not in pages or unquote(parts.fragment) not in pages[built].ids:
                    fail(f"{place}: no anchor #{parts.fragment} on {built.relative_to(BOOK)}")


def markdown_files() -> list[Path]:
    pages = [p for p in DOCS.rglob("*.md") if p.name != "cli.md"]
    return [ROOT / "README.md"] + sorted(pages)


def check_yaml_examples(voicesim: str, check_jsonschema: str) -> None:
    yaml = YAML(typ="safe")
    work = Path(tempfile.mkdtemp(prefix="voicesim-docs-"))
    by_schema: dict[str, list[Path]] = {}
    count = 0
    for md in markdown_files():
        text = md.read_text(encoding="utf-8")
        for block in YAML_BLOCK.finditer(text):
            body = block.group(1)
            line_no = text[: block.start()].count("\n") + 1
            place = f"{md.relative_to(ROOT)}:{line_no}"
            first = body.splitlines()[0] if body.strip() else ""
            match = SCHEMA_LINE.match(first)
            if not match:
                try:
                    parsed = yaml.load(body)
                except Exception as e:  # noqa: BLE001 - any parse error is the finding
                    fail(f"{place}: a YAML block that does not parse: {e}")
                    continue
                if isinstance(parsed, dict) and (
                    "tests" in parsed or {"background", "bursts"} & parsed.keys()
                ):
                    fail(
                        f"{place}: a suite or profile example without its first line "
                        "`# yaml-language-server: $schema=...`, so it is not checked"
                    )
                continue
            schema = Path(match.group(1)).name
            if not (SCHEMAS / schema).is_file():
                fail(f"{place}: names the schema {schema}, which docs/schemas/ does not hold")
                continue
            count += 1
            folder = work / f"example-{count}"
            folder.mkdir()
            example = folder / "example.yaml"
            example.write_text(body, encoding="utf-8")
            # The files an example names are the reader's own; stand real ones in for them.
            if schema == "profile.schema.json":
                for sound in (ROOT / "fixtures" / "noise").glob("*.wav"):
                    (folder / sound.name).symlink_to(sound)
            for recording in re.findall(r"^\s*audio:\s*(\S+)", body, re.M):
                path = folder / recording
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / "fixtures" / "audio" / "hts1a.wav", path)
            ran = subprocess.run(
                [voicesim, "validate", str(example)], capture_output=True, text=True
            )
            if ran.returncode != 0:
                fail(f"{place}: voicesim validate refuses it:\n{ran.stderr.strip()}")
            by_schema.setdefault(schema, []).append(example)
    for schema, files in by_schema.items():
        json_schema(check_jsonschema, schema, files, "the book's and README's examples")
    if count == 0:
        fail("no suite or profile example found in the book or the README")
    print(f"checked {count} suite and profile examples in the book and the README")
    shutil.rmtree(work)


def json_schema(check_jsonschema: str, schema: str, files: list[Path], what: str) -> bool:
    ran = subprocess.run(
        [check_jsonschema, "--schemafile", str(SCHEMAS / schema), *map(str, files)],
        capture_output=True,
        text=True,
    )
    if ran.returncode != 0:
        fail(f"{what} against {schema}:\n{ran.stdout.strip()}\n{ran.stderr.strip()}")
    return ran.returncode == 0


def check_bundled(voicesim: str, check_jsonschema: str) -> None:
    suites = sorted((ROOT / "examples").rglob("*.yaml"))
    profiles = sorted((ROOT / "fixtures" / "noise").glob("*.yaml"))
    json_schema(check_jsonschema, "suite.schema.json", suites, "the bundled suites")
    json_schema(check_jsonschema, "profile.schema.json", profiles, "the bundled profiles")
    # A field misspelt in a real suite: both validators must say no, or the checks prove nothing.
    with tempfile.TemporaryDirectory() as tmp:
        text = (ROOT / "examples" / "orders.yaml").read_text(encoding="utf-8")
        bad = Path(tmp) / "misspelt.yaml"
        bad.write_text(text.replace("max_turns:", "max_turn:", 1), encoding="utf-8")
        ran = subprocess.run([check_jsonschema, "--schemafile",
                              str(SCHEMAS / "suite.schema.json"), str(bad)],
                             capture_output=True, text=True)
        if ran.returncode == 0 or "max_turn" not in ran.stdout:
            fail("check-jsonschema took a suite with a misspelt field (`max_turn`)")
        ran = subprocess.run([voicesim, "validate", str(bad)], capture_output=True, text=True)
        if ran.returncode != 2 or "max_turn" not in ran.stderr:
            fail("voicesim validate took a suite with a misspelt field (`max_turn`)")


def check_results(check_jsonschema: str) -> None:
    samples = sorted((ROOT / "target" / "tmp").glob("results-*.jsonl"))
    if not samples:
        fail(
            "no results.jsonl lines to check in target/tmp/results-*.jsonl: the tests write "
            "them (tests/run.rs, tests/cli.rs); run `cargo test --all-targets --features "
            "test-hooks` first, as `make test` does"
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for sample in samples:
            for n, line in enumerate(sample.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    path = Path(tmp) / f"{sample.stem}-{n}.json"
                    path.write_text(json.dumps(json.loads(line)), encoding="utf-8")
                    files.append(path)
        json_schema(check_jsonschema, "results.schema.json", files, "results.jsonl lines")
        print(f"checked {len(files)} results.jsonl lines from {len(samples)} runs of the tests")


class LanguageServer:
    """A language server over stdio (JSON-RPC with Content-Length headers), as an editor runs it."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.inbox: queue.Queue[dict] = queue.Queue()
        self.last_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.process.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if not line.strip():
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if length is not None:
                self.inbox.put(json.loads(out.read(length)))

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def request(self, method: str, params: dict) -> int:
        self.last_id += 1
        self.send({"id": self.last_id, "method": method, "params": params})
        return self.last_id

    def notify(self, method: str, params: dict) -> None:
        self.send({"method": method, "params": params})

    def wait(self, wanted, seconds: float = 60) -> dict | None:
        """The first message `wanted` accepts, answering the server's own requests meanwhile."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                message = self.inbox.get(timeout=left)
            except queue.Empty:
                break
            if "method" in message and "id" in message:
                items = message.get("params", {}).get("items", [])
                settings = {"validate": True, "completion": True, "schemaStore": {"enable": False}}
                answer = [settings] * len(items) if message["method"] == "workspace/configuration" else None
                self.send({"id": message["id"], "result": answer})
            elif wanted(message):
                return message
        return None

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def check_editor(server_folder: str) -> None:
    server = Path(server_folder) / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
    if not server.is_file():
        fail(f"no YAML language server at {server} (scripts/pinned-npm.sh tests/editor yamlls installs it)")
        return
    suite = ROOT / "examples" / "orders.yaml"
    uri, text = suite.as_uri(), suite.read_text(encoding="utf-8")
    editor = LanguageServer(["node", str(server), "--stdio"])
    try:
        started = editor.request("initialize", {
            "processId": None,
            "rootUri": ROOT.as_uri(),
            "capabilities": {"workspace": {"configuration": True}},
        })
        if editor.wait(lambda m: m.get("id") == started) is None:
            fail("the YAML language server did not start")
            return
        editor.notify("initialized", {})

        def diagnostics(version: int, content: str, want_some: bool) -> list[str] | None:
            if version == 1:
                editor.notify("textDocument/didOpen", {"textDocument": {
                    "uri": uri, "languageId": "yaml", "version": 1, "text": content}})
            else:
                editor.notify("textDocument/didChange", {
                    "textDocument": {"uri": uri, "version": version},
                    "contentChanges": [{"text": content}]})
            said = editor.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                               and m["params"]["uri"] == uri
                               and bool(m["params"]["diagnostics"]) == want_some)
            return None if said is None else [d["message"] for d in said["params"]["diagnostics"]]

        if diagnostics(1, text, want_some=False) is None:
            fail("the YAML language server found errors in examples/orders.yaml, or said nothing")
        misspelt = diagnostics(2, text.replace("max_turns: 2", "max_turn: 2", 1), want_some=True)
        if not misspelt or not any("max_turn" in m for m in misspelt):
            fail(f"the YAML language server did not flag a misspelt field from the schema: {misspelt}")
        # A new line among a step's fields: the editor offers the fields the step lacks.
        lines = text.split("\n")
        at = next(n for n, line in enumerate(lines) if "max_turns: 2" in line) + 1
        lines.insert(at, " " * 8)
        diagnostics(3, "\n".join(lines), want_some=False)
        asked = editor.request("textDocument/completion", {
            "textDocument": {"uri": uri}, "position": {"line": at, "character": 8}})
        answer = editor.wait(lambda m: m.get("id") == asked)
        result = (answer or {}).get("result") or []
        offered = {i["label"] for i in (result["items"] if isinstance(result, dict) else result)}
        if not {"audio", "dtmf", "response_guide"} <= offered:
            fail(f"the YAML language server completed a step with {sorted(offered)}, "
                 "not the step's missing fields from the schema")
        else:
            print(f"an editor completes and checks examples/orders.yaml from its schema "
                  f"(offered {', '.join(sorted(offered))})")
    finally:
        editor.stop()


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    voicesim, check_jsonschema, yaml_language_server = sys.argv[1:4]
    pages = check_book_links()
    check_readme_links(pages)
    check_yaml_examples(voicesim, check_jsonschema)
    check_bundled(voicesim, check_jsonschema)
    check_results(check_jsonschema)
    check_editor(yaml_language_server)
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} problems in the docs", file=sys.stderr)
        return 1
    print(f"the book: {len(pages)} pages, every link and example checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
