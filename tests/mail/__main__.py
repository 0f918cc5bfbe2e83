"""``python -m tests.mail``: the email example's servers, until Ctrl-C."""

from tests.mail.setup import main

main()
