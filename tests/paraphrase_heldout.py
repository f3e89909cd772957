"""A second, held-out batch of known gaps for the gap groups, each asked five ways as people type
them into Slack. Written and committed before any change to the grouping was tried, and never
used to choose one: the grouping is tuned on ../shared/train only (bot/evaluation/tune_report.py).
None of it comes from ../shared.

Subjects are spread over IT, HR, payroll, finance, product documentation, facilities, security,
legal and engineering on-call. Several sets lean on synonyms (parental / maternity / paternity
leave; payday / salary / wages; CSV / spreadsheet / Excel; air conditioning / heating /
temperature), and `NEAR_MISSES` pairs sets on one subject that ask for different things: their
groups must stay apart.
"""

from __future__ import annotations

HELD_OUT_SETS: list[list[str]] = [
    # 0 IT: a broken laptop
    ["My laptop screen is broken, how do I get a replacement?",
     "Who do I contact to get a new laptop when mine breaks?",
     "laptop broken, how to request a replacement?",
     "What's the process for swapping a damaged work laptop?",
     "Can IT give me a new laptop? Mine stopped working"],
    # 1 IT: guest Wi-Fi
    ["What's the guest Wi-Fi password?",
     "How can visitors get onto the wifi?",
     "guest wifi password?",
     "Which network should our visitors connect to and what's the password?",
     "Is there Wi-Fi for guests at the office, and how do they log in?"],
    # 2 HR: parental leave (synonyms)
    ["How long is maternity leave?",
     "How many weeks of parental leave do we get?",
     "What's the policy for time off after having a baby?",
     "paternity leave length?",
     "How much leave can I take when my child is born?"],
    # 3 HR: calling in sick (same subject as 2: leave)
    ["How do I report a sick day?",
     "Who do I tell when I'm ill and can't come in?",
     "calling in sick procedure?",
     "What should I do if I'm sick and need to miss work?",
     "What's the process for letting my manager know I'm unwell today?"],
    # 4 Finance: when expenses are paid back
    ["When will my expenses be reimbursed?",
     "How long does it take to get paid back for an expense claim?",
     "expense refund timeline?",
     "I submitted expenses last week, when do I get the money?",
     "How soon are approved expense claims paid out?"],
    # 5 Finance: meal allowance on trips (same subject as 4: expenses)
    ["What's the daily meal allowance when travelling for work?",
     "How much can I spend on food per day on a business trip?",
     "per diem rates for travel?",
     "Is there a limit on dinner costs when I'm travelling for the company?",
     "What's the per-day food budget on work trips?"],
    # 6 Payroll: payday (synonyms)
    ["When is payday?",
     "What day of the month do we get our salary?",
     "When are wages paid?",
     "pay date this month?",
     "On which date does the monthly paycheck arrive?"],
    # 7 Product docs: API rate limit
    ["What is the rate limit on the public API?",
     "How many requests per minute can a client make to our API?",
     "API throttling limits?",
     "At what point does the API start returning 429 errors?",
     "What's the maximum request rate allowed by the REST API?"],
    # 8 Product docs: API authentication (same subject as 7: the API)
    ["How do I authenticate to the API?",
     "Where do I get an API key?",
     "api auth token how?",
     "What credentials does the REST API need?",
     "How do clients log in to the public API?"],
    # 9 Product docs: exporting data (synonyms)
    ["Can users export their data to CSV?",
     "Is there a way to download a report as a spreadsheet?",
     "csv export supported?",
     "How do customers get their data out as a CSV file?",
     "Does the product let you export tables to Excel?"],
    # 10 Facilities: booking a meeting room
    ["How do I book a meeting room?",
     "Where can I reserve a conference room?",
     "room booking for meetings?",
     "What's the way to reserve a room for a team meeting?",
     "How can I get a meeting space for Thursday afternoon?"],
    # 11 Facilities: office temperature (synonyms)
    ["The air conditioning on our floor isn't working, who do I tell?",
     "Who fixes the heating when the office is too cold?",
     "office temperature complaint - where do I report it?",
     "aircon broken on 4th floor, who to contact?",
     "How do I report that the office is too hot?"],
    # 12 Engineering: who is on call
    ["Who is on call this week?",
     "Who's the current on-call engineer?",
     "which engineer has the pager right now?",
     "on-call rota this week?",
     "Who should I page for a production incident tonight?"],
    # 13 Engineering: on-call pay (same subject as 12: on call)
    ["Do we get paid extra for being on call?",
     "Is on-call duty compensated?",
     "on-call pay?",
     "What's the allowance for carrying the pager out of hours?",
     "How much extra do engineers earn for on-call shifts?"],
    # 14 Engineering: deploying
    ["How do I deploy to production?",
     "What are the steps to ship a release to prod?",
     "prod deploy process?",
     "How do we push a new version live?",
     "How is a production release rolled out?"],
    # 15 Security: phishing
    ["How do I report a phishing email?",
     "I got a suspicious email, who do I forward it to?",
     "where to send scam emails?",
     "What should I do with an email that looks like a phishing attempt?",
     "Someone sent me a weird link asking for my password, who should I tell?"],
    # 16 Legal: the NDA template
    ["Where can I find the NDA template?",
     "Do we have a standard non-disclosure agreement I can send to a vendor?",
     "nda template?",
     "Who can give me a confidentiality agreement to sign with a partner?",
     "Is there a template for a mutual NDA?"],
]

# Sets on one subject asking for different things (set numbers above).
NEAR_MISSES: list[tuple[int, int]] = [(2, 3), (4, 5), (7, 8), (12, 13)]
