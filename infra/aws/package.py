"""Package StoreLink for AWS: Chalice's SAM template merged with infra/aws/resources.yaml.

    python -m infra.aws.package --stage prod                 # -> build/aws/prod/
    python -m infra.aws.package --stage dev --out /tmp/dev

This runs ``chalice package --stage <stage> --merge-template infra/aws/resources.yaml
<out>``, which writes ``sam.yaml`` and ``deployment.zip`` (the code and the Lambda
platform's wheels of requirements.txt); the deploy steps follow in infra/aws/README.md.
Two things around it:

- it refuses to package while the template's tables drift from the records;
- it pins the template's ``Stage`` parameter to the packaged stage: the Lambdas of a
  dev package read the dev tables, so deploying it with Stage=prod would give them a
  stack whose tables they never use.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import yaml

from infra.aws.drift import TEMPLATE, load_template, table_drift

PROJECT_DIR = Path(__file__).resolve().parents[2]
AWS_STAGES = ("dev", "prod")
# The venv's chalice, whatever the PATH says (chalice has no `python -m chalice`).
CHALICE = [sys.executable, "-c", "import sys; from chalice.cli import main; sys.exit(main())"]


class PackagingError(RuntimeError):
    """The template or the project is not fit to package."""


def package(stage: str, out_dir: str | Path, project_dir: str | Path = PROJECT_DIR,
            merge_template: str | Path = TEMPLATE) -> Path:
    """Write ``sam.yaml`` and ``deployment.zip`` for ``stage`` into ``out_dir``; returns sam.yaml."""
    if stage not in AWS_STAGES:
        raise PackagingError(f"stage {stage!r} is not deployed to AWS (one of {', '.join(AWS_STAGES)})")
    drift = table_drift(load_template(merge_template))
    if drift:
        raise PackagingError("the template's tables differ from the records:\n  " + "\n  ".join(drift))

    env = dict(os.environ)
    if not (env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION")):
        # chalice package starts a botocore session, which wants a region; the template
        # does not depend on it (it says ${AWS::Region}), and no credentials are needed.
        env["AWS_DEFAULT_REGION"] = "cn-north-1"
    out_dir = Path(out_dir).resolve()
    # YAML out, as the merge template is (chalice would switch to it by itself anyway).
    run = subprocess.run([*CHALICE, "package", "--stage", stage, "--template-format", "yaml",
                          "--merge-template", str(Path(merge_template).resolve()), str(out_dir)],
                         cwd=project_dir, env=env, stderr=subprocess.PIPE, text=True)
    sys.stderr.write(run.stderr)
    if run.returncode != 0:
        # Chalice prints a traceback; its last line says what is wrong.
        last = run.stderr.strip().splitlines()[-1:] or [f"exit status {run.returncode}"]
        raise PackagingError(f"chalice package failed: {last[0]}")

    sam = out_dir / "sam.yaml"
    # Chalice writes intrinsics in their long form ({"Ref": ...}): plain YAML to read and write.
    template = yaml.safe_load(sam.read_text())
    template["Parameters"]["Stage"].update(Default=stage, AllowedValues=[stage])
    sam.write_text(yaml.safe_dump(template, allow_unicode=True, sort_keys=False))
    return sam


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True, choices=AWS_STAGES)
    parser.add_argument("--out", help="output folder (default: build/aws/<stage>)")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else PROJECT_DIR / "build" / "aws" / args.stage
    try:
        sam = package(args.stage, out)
    except PackagingError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"packaged stage {args.stage}: {sam} and {sam.with_name('deployment.zip')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
