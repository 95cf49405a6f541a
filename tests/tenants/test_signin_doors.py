"""Every sign-in door is throttled, counting holds under concurrency, and a stranger
who knows an email cannot keep its owner out."""

import re
import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from tenants.models import SignInCounter
from tenants.tasks import signin_counters_purge
from tests.factories import UserFactory
from tests.tenants.hashers import CountingHasher
from tests.tenants.test_signin import Clock, sign_in

REFUSED = "Too many failed sign-in attempts"


@pytest.fixture
def limits(settings):
    settings.SIGNIN_THROTTLE_SOFT = 3
    settings.SIGNIN_THROTTLE_HARD = 5
    settings.SIGNIN_THROTTLE_LOCKOUT_S = 900
    return settings


def admin_sign_in(client, email, password, address="10.0.0.1"):
    return client.post(
        reverse("admin:login"), {"username": email, "password": password}, REMOTE_ADDR=address
    )


@pytest.mark.django_db
def test_admin_login__repeated_failures__refused_like_the_sign_in_page(
    client, password, limits, monkeypatch
):
    clock = Clock(monkeypatch)
    staff = UserFactory(is_staff=True, is_superuser=True)
    for _ in range(limits.SIGNIN_THROTTLE_HARD):
        clock.advance(5)  # past each soft step (1 s, 2 s), well inside the window
        admin_sign_in(client, staff.email, "wrong")

    response = admin_sign_in(client, staff.email, password)
    assert REFUSED in response.content.decode()
    assert "_auth_user_id" not in client.session

    # The two doors share one count: the sign-in page refuses the same attempt.
    assert REFUSED in sign_in(client, staff.email, password).content.decode()


@pytest.mark.django_db(transaction=True)
def test_sign_in__30_concurrent_wrong_passwords__no_more_than_the_limit_reach_the_hash(
    limits, capsys
):
    limits.PASSWORD_HASHERS = ["tests.tenants.hashers.CountingHasher"]
    CountingHasher.verified = 0
    victim = UserFactory()
    start = threading.Barrier(30)
    answers = []

    def guess():
        start.wait()
        try:
            answers.append(sign_in(Client(), victim.email, "wrong", address="203.0.113.9"))
        finally:
            connection.close()

    threads = [threading.Thread(target=guess) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with capsys.disabled():
        print(
            f"\n[signin] 30 concurrent wrong passwords, limit "
            f"{limits.SIGNIN_THROTTLE_SOFT} soft / {limits.SIGNIN_THROTTLE_HARD} hard: "
            f"{CountingHasher.verified} reached the password hash, "
            f"{sum(REFUSED in a.content.decode() for a in answers)} were refused before it"
        )
    assert len(answers) == 30
    assert CountingHasher.verified <= limits.SIGNIN_THROTTLE_HARD
    assert sum(REFUSED in a.content.decode() for a in answers) == 30 - CountingHasher.verified


@pytest.mark.django_db
def test_sign_in__stranger_locked_out__owner_from_own_address_still_signs_in(
    client, password, limits, monkeypatch
):
    clock = Clock(monkeypatch)
    owner = UserFactory()
    for _ in range(limits.SIGNIN_THROTTLE_HARD * 3):
        clock.advance(5)
        sign_in(client, owner.email, "guess", address="203.0.113.9")

    # The stranger is refused even with the right password ...
    assert REFUSED in sign_in(Client(), owner.email, password, "203.0.113.9").content.decode()
    # ... while the owner, from their own address, signs in.
    owners_browser = Client()
    assert sign_in(owners_browser, owner.email, password, "198.51.100.7").status_code == 302
    assert owners_browser.session["_auth_user_id"] == str(owner.pk)


@pytest.mark.django_db
def test_sign_in__one_failure_per_lockout_period__never_keeps_the_owner_out(
    password, limits, monkeypatch
):
    clock = Clock(monkeypatch)
    owner = UserFactory()
    for _ in range(limits.SIGNIN_THROTTLE_HARD * 4):
        clock.advance(limits.SIGNIN_THROTTLE_LOCKOUT_S - 60)
        sign_in(Client(), owner.email, "guess", address="203.0.113.9")

    # Right after the stranger's latest failure, the owner signs in from their address,
    assert sign_in(Client(), owner.email, password, "198.51.100.7").status_code == 302
    # and old failures expire: a slow trickle never adds up to a lock, even from there.
    assert sign_in(Client(), owner.email, password, "203.0.113.9").status_code == 302


@pytest.mark.django_db
def test_lockout__emails_the_owner_an_unlock_link__which_lets_them_in_again(
    client, password, limits, monkeypatch, mailoutbox, django_capture_on_commit_callbacks
):
    clock = Clock(monkeypatch)
    owner = UserFactory(email="forgetful@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(limits.SIGNIN_THROTTLE_HARD + 2):  # two more after the lock: one email
            clock.advance(5)
            sign_in(client, owner.email, "not it")
    assert REFUSED in sign_in(client, owner.email, password).content.decode()

    assert [m.to for m in mailoutbox] == [["forgetful@example.com"]]
    body = mailoutbox[0].body
    assert "paused" in body
    link = re.search(r"https?://\S+/reset/\S+", body).group(0)
    assert link.startswith(limits.PUBLIC_URL)

    # Following the link and choosing a new password unlocks the account at once.
    page = client.get(link.removeprefix(limits.PUBLIC_URL), follow=True)
    new = "a brand new passphrase 77"
    client.post(page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    client.post(reverse("tenants:logout"))
    assert sign_in(client, owner.email, new).status_code == 302


@pytest.mark.django_db
def test_password_reset__hostile_host_header__link_points_at_public_url(
    client, settings, mailoutbox
):
    settings.ALLOWED_HOSTS = ["*"]  # a permissive proxy in front, the worst case
    settings.PUBLIC_URL = "https://connector.example.com"
    UserFactory(email="forgot@example.com")
    client.post(
        reverse("tenants:password_reset"), {"email": "forgot@example.com"}, HTTP_HOST="evil.test"
    )
    link = next(word for word in mailoutbox[0].body.split() if "/reset/" in word)
    assert link.startswith("https://connector.example.com/reset/")


@pytest.mark.django_db
def test_purge__deletes_closed_windows__keeps_counts_that_still_lock(client, limits, monkeypatch):
    clock = Clock(monkeypatch)
    sign_in(client, UserFactory().email, "wrong", address="198.51.100.1")  # one failure
    locked = UserFactory()
    for _ in range(limits.SIGNIN_THROTTLE_HARD):
        clock.advance(5)
        sign_in(client, locked.email, "wrong", address="203.0.113.9")
    clock.advance(limits.SIGNIN_THROTTLE_LOCKOUT_S - 10)
    before = SignInCounter.objects.count()

    purged = signin_counters_purge()

    # Every window has closed, but one count still locks 203.0.113.9 out of an account.
    assert (before, purged) == (4, 3)
    assert REFUSED in sign_in(client, locked.email, "x", address="203.0.113.9").content.decode()
