"""Reports as mail systems write them (headers of the original mail are filled in by each test)."""

from __future__ import annotations

#: Postfix's DSN for an unknown mailbox, as it arrives (RFC 3464): ``{to}``, ``{rcpt}``, ``{message_id}``.
POSTFIX_DSN = """\
Return-Path: <>
Received: by mx.remote.example (Postfix) id 4QxYz1Abc; Tue,  1 Dec 2026 09:14:02 +0300 (EAT)
Date: Tue,  1 Dec 2026 09:14:02 +0300 (EAT)
From: MAILER-DAEMON@mx.remote.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {to}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4QxYz1Abc.1733033642/mx.remote.example"
Content-Transfer-Encoding: 8bit
Message-Id: <20261201061402.4QxYz1Abc@mx.remote.example>

This is a MIME-encapsulated message.

--4QxYz1Abc.1733033642/mx.remote.example
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mx.remote.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

                   The mail system

<{rcpt}>: host mailstore.remote.example[10.1.2.3] said: 550 5.1.1
    <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox
    table (in reply to RCPT TO command)

--4QxYz1Abc.1733033642/mx.remote.example
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.remote.example
X-Postfix-Queue-ID: 4QxYz1Abc
X-Postfix-Sender: rfc822; bounces@notiflow.test
Arrival-Date: Tue,  1 Dec 2026 09:14:01 +0300 (EAT)

Final-Recipient: rfc822; {rcpt}
Original-Recipient: rfc822;{rcpt}
Action: failed
Status: 5.1.1
Remote-MTA: dns; mailstore.remote.example
Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User
    unknown in virtual mailbox table

--4QxYz1Abc.1733033642/mx.remote.example
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers
Content-Transfer-Encoding: 8bit

Return-Path: <bounces@notiflow.test>
From: notiflow@test.local
To: {rcpt}
Subject: ISS-1 assigned to you
Message-ID: {message_id}
MIME-Version: 1.0

--4QxYz1Abc.1733033642/mx.remote.example--
""".replace("\n", "\r\n")

#: qmail's bounce (not RFC 3464; flufl.bounce reads it).
QMAIL_BOUNCE = """\
From: MAILER-DAEMON@mail.remote.example
To: bounces@notiflow.test
Subject: failure notice

Hi. This is the qmail-send program at mail.remote.example.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{rcpt}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <bounces@notiflow.test>
Message-ID: {message_id}
Subject: ISS-1 assigned to you

body
""".replace("\n", "\r\n")
