#!/usr/bin/env python3
"""What a company has today (the article's browser code, as a script): for each file, POST to
the backend for a presigned URL, then PUT the file to it; one file after another, connections
kept alive as a browser keeps them. Prints each landed key.

    article_baseline.py BACKEND_URL TOKEN FILE_OR_FOLDER
"""
import http.client
import json
import os
import sys
import urllib.parse

backend, token, source = sys.argv[1], sys.argv[2], sys.argv[3]
files = sorted(
    os.path.join(d, f) for d, _, fs in os.walk(source) for f in fs
) if os.path.isdir(source) else [source]
connections = {}


def conn(url):
    key = (url.scheme, url.netloc)
    if key not in connections:
        cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        connections[key] = cls(url.netloc, timeout=300, blocksize=1 << 20)
    return connections[key]


def request(method, url, body, headers):
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    for attempt in (1, 2):  # a kept-alive connection the server closed: once more on a new one
        c = conn(u)
        try:
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            return r.status, r.read()
        except (http.client.HTTPException, ConnectionError):
            c.close()
            connections.pop((u.scheme, u.netloc), None)
            if attempt == 2:
                raise


api = backend.rstrip("/") + "/api/upload"
for path in files:
    size = os.path.getsize(path)
    ask = json.dumps({"fileName": os.path.basename(path), "contentType": "application/octet-stream", "size": size})
    status, body = request("POST", api, ask, {"authorization": "Bearer " + token, "content-type": "application/json"})
    if status != 200:
        sys.exit(f"{path}: the backend answered {status}: {body[:200]!r}")
    answer = json.loads(body)
    headers = dict(answer.get("headers") or {})
    headers["content-length"] = str(size)
    with open(path, "rb") as f:
        status, body = request("PUT", answer["url"], f, headers)
    if status not in (200, 201):
        sys.exit(f"{path}: the store answered {status}: {body[:200]!r}")
    print(answer["key"], flush=True)
