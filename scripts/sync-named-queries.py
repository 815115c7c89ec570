#!/usr/bin/env python3
"""Writes queries/*.sql (and the views of queries/ddl) into template.yaml as Athena
named queries, between the BEGIN/END markers, so that the SQL deployed is the SQL that
`auditlog query` runs in the tests. A test (tests/tests/template.rs) fails when they
differ; run this script to bring the template back in step."""
import pathlib
import re

root = pathlib.Path(__file__).resolve().parent.parent
template = root / "template.yaml"
begin = "  # BEGIN named queries (scripts/sync-named-queries.py writes this block from queries/)\n"
end = "  # END named queries\n"


def resource_name(stem):
    return "Query" + "".join(p.capitalize() for p in re.split(r"[_\-]", stem))


def question(text):
    lines = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        body = line[2:].strip()
        if body.startswith("@question"):
            lines.append(body[len("@question"):].strip())
        elif lines and not body.startswith("@"):
            lines.append(body)
        elif body.startswith("@"):
            if lines:
                break
    return " ".join(lines)[:1024] or "Audit log view"


blocks = []
files = [(p, "view") for p in sorted((root / "queries" / "ddl").glob("audit_events*.sql"))]
files += [(p, "query") for p in sorted((root / "queries").glob("*.sql"))]
for path, kind in files:
    text = path.read_text()
    name = ("CreateView" + resource_name(path.stem)[5:]) if kind == "view" else resource_name(path.stem)
    description = (
        f"Run once per database: creates the view {path.stem}." if kind == "view" else question(text)
    ).replace('"', "'")
    body = "".join("        " + line if line.strip() else "\n" for line in text.splitlines(True))
    blocks.append(
        f"""  {name}:
    Type: AWS::Athena::NamedQuery
    Properties:
      Name: {path.stem if kind == "query" else "create_view_" + path.stem}
      Description: "{description}"
      Database: !Ref AuditDatabase
      WorkGroup: !Ref AthenaWorkGroup
      QueryString: |
{body.rstrip()}
"""
    )

t = template.read_text()
section = begin + "\n".join(blocks) + end
if begin in t:
    t = t[: t.index(begin)] + section + t[t.index(end) + len(end):]
else:
    t = t.replace("\nOutputs:\n", "\n" + section + "\nOutputs:\n") if "\nOutputs:\n" in t else t + "\n" + section
template.write_text(t)
print(f"wrote {len(blocks)} named queries into {template.relative_to(root)}")
