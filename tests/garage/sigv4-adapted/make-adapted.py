#!/usr/bin/env python3
"""Write the expected files of the AWS SigV4 cases whose AWS answer relies on
a rule Garage does not apply (see README.md here). The canonical request is
the AWS one with only the differing line changed; the string to sign and the
signature are then computed here with hashlib/hmac, independently of the C
signer. Run from the repository root; the output is committed."""
import hashlib, hmac, json, os

SRC = "tests/garage/aws-sigv4"
DST = "tests/garage/sigv4-adapted"

def adapt(case, old, new):
    ctx = json.load(open(f"{SRC}/{case}/context.json"))
    creq = open(f"{SRC}/{case}/header-canonical-request.txt").read()
    assert old in creq, (case, old)
    creq = creq.replace(old, new)
    ts = ctx["timestamp"].replace("-", "").replace(":", "")
    date = ts[:8]
    scope = f"{date}/{ctx['region']}/{ctx['service']}/aws4_request"
    sts = "AWS4-HMAC-SHA256\n%s\n%s\n%s" % (ts, scope, hashlib.sha256(creq.encode()).hexdigest())
    k = ("AWS4" + ctx["credentials"]["secret_access_key"]).encode()
    for part in (date, ctx["region"], ctx["service"], "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    os.makedirs(f"{DST}/{case}", exist_ok=True)
    open(f"{DST}/{case}/header-canonical-request.txt", "w").write(creq)
    open(f"{DST}/{case}/header-string-to-sign.txt", "w").write(sts)
    open(f"{DST}/{case}/header-signature.txt", "w").write(sig)

# Garage trims header values at both ends only; AWS also collapses inner spaces.
adapt("get-header-value-trim", 'my-header2:"a b c"', 'my-header2:"a   b   c"')
# Garage sorts the canonical query as whole "k=v" strings; AWS sorts by key.
adapt("get-vanilla-query-order-encoded",
      "%E1%88%B4=Value1&Param=Value2&Param-3=Value3",
      "%E1%88%B4=Value1&Param-3=Value3&Param=Value2")
