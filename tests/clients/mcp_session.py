#!/usr/bin/env python3
"""Drives `quarry mcp` with the official MCP Python SDK (PyPI `mcp`), as a coding agent would,
and prints one JSON object describing what the server answered. The Rust test
`tests/tests/mcp.rs` runs this and asserts on the result.

  mcp_session.py QUARRY_BIN REPO                    the full tour
  mcp_session.py QUARRY_BIN REPO --index-on-start   a server that indexes as it starts
  mcp_session.py QUARRY_BIN REPO --edit LLM_URL     edits: a dry run, then applied
  mcp_session.py QUARRY_BIN REPO --read PATH... --query Q...   read_chunk each path, search each query
"""

from __future__ import annotations

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def text_of(result) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def session(binary: str, repo: str) -> dict:
    params = StdioServerParameters(command=binary, args=["mcp", repo], cwd=repo)
    out: dict = {}
    with open("/dev/null", "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as client:
                init = await client.initialize()
                out["server_name"] = init.server_info.name if init.server_info else None
                tools = await client.list_tools()
                out["tools"] = {t.name: {"description": t.description, "schema": t.input_schema} for t in tools.tools}

                async def call(name: str, arguments: dict) -> dict:
                    result = await client.call_tool(name, arguments)
                    return {"is_error": bool(result.is_error), "text": text_of(result)}

                out["search"] = await call("search", {"query": "where do we retry failed uploads", "k": 3})
                out["search_identifier"] = await call("search", {"query": "parse_query", "k": 1, "mode": "keyword"})
                out["definitions"] = await call("definitions", {"name": "upload_with_retry"})
                out["references"] = await call("references", {"name": "new", "limit": 3})
                out["references_next"] = await call("references", {"name": "new", "limit": 3, "offset": 3})
                out["read_chunk"] = await call("read_chunk", {"path": "src/upload.rs", "start_line": 1, "end_line": 3})
                out["read_parent"] = await call("read_chunk", {"path": "../outside.txt", "start_line": 1, "end_line": 1})
                out["read_absolute"] = await call("read_chunk", {"path": "/etc/passwd", "start_line": 1, "end_line": 1})
                out["bad_mode"] = await call("search", {"query": "x", "mode": "telepathy"})
                out["bad_source"] = await call("search", {"query": "x", "source": "gossip"})
                out["commits_without_git"] = await call("search", {"query": "retry", "source": "commits"})
                out["missing_argument"] = await call("search", {"k": 3})
                out["wrong_type"] = await call("read_chunk", {"path": "src/upload.rs", "start_line": "one", "end_line": 2})
                out["status"] = await call("status", {})
                out["ask_without_llm"] = await call("ask", {"question": "how are uploads retried?"})
                out["edit_apply_refused"] = await call("edit", {"request": "add a timeout", "dry_run": False})
                out["edit_without_llm"] = await call("edit", {"request": "add a timeout"})
                # Still serving after all the errors above.
                out["search_after_errors"] = await call("search", {"query": "upload_with_retry", "k": 1})
    return out


async def index_on_start(binary: str, repo: str) -> dict:
    """Searches while the start-up index run goes on: first without a progress token (the
    answer says how far it is), then with one (the call waits, told the progress)."""
    params = StdioServerParameters(command=binary, args=["mcp", repo, "--index-on-start"], cwd=repo)
    out: dict = {"progress": []}

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        out["progress"].append({"progress": progress, "total": total, "message": message})

    with open("/dev/null", "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as client:
                await client.initialize()
                result = await client.call_tool("search", {"query": "NoteStore add", "k": 1})
                out["early"] = {"is_error": bool(result.is_error), "text": text_of(result)}
                result = await client.call_tool("search", {"query": "NoteStore add", "k": 1},
                                                progress_callback=on_progress)
                out["search"] = {"is_error": bool(result.is_error), "text": text_of(result)}
    return out


async def edits(binary: str, repo: str, llm_url: str) -> dict:
    """A server that may edit, with an LLM: a dry run, then the same change applied."""
    params = StdioServerParameters(
        command=binary, args=["mcp", repo, "--allow-edits"], cwd=repo,
        env={"QUARRY_LLM_URL": llm_url, "QUARRY_LLM_MODEL": "stub"})
    out: dict = {}
    with open("/dev/null", "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as client:
                await client.initialize()
                for name, arguments in [
                    ("dry", {"request": "count notes for export and search"}),
                    ("applied", {"request": "count notes for export and search", "dry_run": False}),
                ]:
                    result = await client.call_tool("edit", arguments)
                    out[name] = {"is_error": bool(result.is_error), "text": text_of(result)}
    return out


async def reads(binary: str, repo: str, paths: list[str], queries: list[str]) -> dict:
    """Everything an agent can get for some paths and queries: each file's first 2,000 lines
    by read_chunk, and the hits of each query (k 50, hybrid and keyword)."""
    params = StdioServerParameters(command=binary, args=["mcp", repo], cwd=repo)
    out: dict = {"read": {}, "search": {}}
    with open("/dev/null", "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as client:
                await client.initialize()
                for path in paths:
                    result = await client.call_tool(
                        "read_chunk", {"path": path, "start_line": 1, "end_line": 2000})
                    out["read"][path] = {"is_error": bool(result.is_error), "text": text_of(result)}
                for query in queries:
                    for mode in ("hybrid", "keyword"):
                        result = await client.call_tool(
                            "search", {"query": query, "k": 50, "mode": mode})
                        out["search"][f"{mode}:{query}"] = {
                            "is_error": bool(result.is_error), "text": text_of(result)}
    return out


def main() -> None:
    binary, repo = sys.argv[1], sys.argv[2]
    if "--edit" in sys.argv[3:]:
        url = sys.argv[sys.argv.index("--edit") + 1]
        result = asyncio.run(edits(binary, repo, url))
    elif "--read" in sys.argv[3:]:
        rest = sys.argv[sys.argv.index("--read") + 1:]
        split = rest.index("--query") if "--query" in rest else len(rest)
        result = asyncio.run(reads(binary, repo, rest[:split], rest[split + 1:]))
    elif "--index-on-start" in sys.argv[3:]:
        result = asyncio.run(index_on_start(binary, repo))
    else:
        result = asyncio.run(session(binary, repo))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
