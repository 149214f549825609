"""The shape of the code: dependencies run entry points -> use cases -> domain."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = {"chalice", "boto3", "botocore", "pynamodb", "requests"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_domain_imports_no_framework_and_no_adapter():
    for path in (ROOT / "chalicelib" / "domain").rglob("*.py"):
        for name in _imports(path):
            assert name.split(".")[0] not in FRAMEWORKS, f"{path.name} imports {name}"
            assert not name.startswith(("chalicelib.db", "chalicelib.wechat", "chalicelib.api",
                                        "chalicelib.services")), f"{path.name} imports {name}"


def test_use_cases_do_not_import_the_web_framework():
    for path in (ROOT / "chalicelib" / "services").rglob("*.py"):
        for name in _imports(path):
            assert name.split(".")[0] != "chalice", f"{path.name} imports {name}"
            assert not name.startswith("chalicelib.api"), f"{path.name} imports {name}"


def test_nothing_below_the_entry_points_imports_them():
    for layer in ("domain", "services", "db", "wechat"):
        for path in (ROOT / "chalicelib" / layer).rglob("*.py"):
            assert not any(n.startswith("chalicelib.api") for n in _imports(path)), path


def test_app_py_only_wires_the_table_of_contents():
    tree = ast.parse((ROOT / "app.py").read_text())
    defined = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert not any(isinstance(n, ast.ClassDef) for n in defined)
    assert all(any(isinstance(d, ast.Call) and getattr(d.func, "attr", "") in ("schedule", "on_sqs_message", "lambda_function")
                   for d in n.decorator_list) for n in defined), "app.py holds only schedule/queue handlers"


def test_runtime_requirements_hold_no_test_tools():
    runtime = (ROOT / "requirements.txt").read_text().lower()
    for tool in ("pytest", "moto", "hypothesis", "chalice==", "cfn-lint"):
        assert tool not in runtime
