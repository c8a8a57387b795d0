"""Latency of POST /api/ask over the dev eval set, then 50 concurrent requests.

    python bench/api.py URL [REPEAT]      (a running `qa serve`; default REPEAT 3)
"""
import json, statistics, sys, time, os
from concurrent.futures import ThreadPoolExecutor
import httpx

url = sys.argv[1].rstrip("/")
repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
items = [json.loads(l) for l in open("eval/sets/seed_questions.dev.jsonl", encoding="utf-8")]
client = httpx.Client(timeout=600)
client.post(f"{url}/api/ask", json={"question": "warm up"})
wall, server, passes = [], [], []
for k in range(repeat):
    passes.append([])
    for it in items:
        t = time.perf_counter()
        r = client.post(f"{url}/api/ask", json={"question": it["question"], "history": it.get("history", [])})
        wall.append((time.perf_counter() - t) * 1000)
        passes[-1].append(wall[-1])
        assert r.status_code == 200, r.text
        server.append(r.json()["timings_ms"]["total"])
def p95(xs):
    xs = sorted(xs); return xs[max(0, int(round(0.95 * len(xs))) - 1)]
for k, p in enumerate(passes):
    print(f"pass {k+1}: median {statistics.median(p):.0f} ms, p95 {p95(p):.0f} ms, max {max(p):.0f} ms")
print(f"sequential: n={len(wall)} median {statistics.median(wall):.0f} ms, p95 {p95(wall):.0f} ms (client wall); "
      f"server total median {statistics.median(server):.0f} ms, p95 {p95(server):.0f} ms; loadavg {os.getloadavg()[0]:.1f}")

qs = [it for it in items]
ref = {}
for it in qs:
    ref[it["id"]] = client.post(f"{url}/api/ask", json={"question": it["question"], "history": it.get("history", [])}).json()
batch = [qs[i % len(qs)] for i in range(50)]
def one(it):
    t = time.perf_counter()
    r = client.post(f"{url}/api/ask", json={"question": it["question"], "history": it.get("history", [])})
    return it, r.status_code, r.json(), (time.perf_counter() - t) * 1000
t0 = time.perf_counter()
with ThreadPoolExecutor(50) as ex:
    res = list(ex.map(one, batch))
total = time.perf_counter() - t0
ok = sum(1 for it, s, d, _ in res if s == 200)
same = sum(1 for it, s, d, _ in res if s == 200 and d["answer"] == ref[it["id"]]["answer"]
           and [c["chunk_id"] for c in d["citations"]] == [c["chunk_id"] for c in ref[it["id"]]["citations"]])
lat = [ms for *_, ms in res]
print(f"concurrent: 50 requests, {ok} succeeded, {same} identical to the sequential answer+citations; wall {total:.1f} s "
      f"({50/total:.2f} req/s); per-request median {statistics.median(lat)/1000:.1f} s, max {max(lat)/1000:.1f} s; loadavg {os.getloadavg()[0]:.1f}")
