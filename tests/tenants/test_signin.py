import pytest
from django.urls import reverse

from tenants import throttle
from tests.factories import UserFactory


class Clock:
    """Fake time for the throttle: tests move it instead of sleeping."""

    def __init__(self, monkeypatch):
        self.now = 1_800_000_000.0
        monkeypatch.setattr(throttle.time, "time", lambda: self.now)

    def advance(self, seconds):
        self.now += seconds


def sign_in(client, email, password, address="10.0.0.1"):
    return client.post(
        reverse("tenants:login"), {"username": email, "password": password}, REMOTE_ADDR=address
    )


@pytest.mark.django_db
def test_sign_in__right_password__signs_in(client, password):
    user = UserFactory()
    response = sign_in(client, user.email, password)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


@pytest.mark.django_db
def test_sign_in__repeated_failures__slowed_then_refused_then_allowed_again(
    client, password, monkeypatch, settings
):
    settings.SIGNIN_THROTTLE_SOFT = 3
    settings.SIGNIN_THROTTLE_HARD = 6
    settings.SIGNIN_THROTTLE_LOCKOUT_S = 900
    clock = Clock(monkeypatch)
    user = UserFactory()

    for _ in range(3):
        response = sign_in(client, user.email, "wrong")
        assert "Please enter a correct email" in response.content.decode()

    # Slowed down: the next attempt right away is refused, even with the right password.
    response = sign_in(client, user.email, password)
    assert response.status_code == 200
    assert "Too many failed sign-in attempts. Try again in 1 s." in response.content.decode()
    assert "_auth_user_id" not in client.session

    # Waiting out each step allows one more attempt; the steps double.
    for wait in (1, 2, 4):
        clock.advance(wait)
        sign_in(client, user.email, "wrong")

    # Six failures: refused for the lockout period, with a message that says so.
    clock.advance(60)
    response = sign_in(client, user.email, password)
    assert "Try again in 14 min 0 s." in response.content.decode()

    clock.advance(900)
    response = sign_in(client, user.email, password)
    assert response.status_code == 302


@pytest.mark.django_db
def test_sign_in__failures_from_one_address__throttle_other_accounts_from_it(
    client, password, monkeypatch, settings
):
    settings.SIGNIN_THROTTLE_SOFT = 2
    Clock(monkeypatch)
    victims = [UserFactory() for _ in range(throttle.ADDRESS_LENIENCY * 2)]
    for victim in victims:
        sign_in(client, victim.email, "guess", address="203.0.113.9")

    someone = UserFactory()
    refused = sign_in(client, someone.email, password, address="203.0.113.9")
    assert "Too many failed sign-in attempts" in refused.content.decode()
    allowed = sign_in(client, someone.email, password, address="198.51.100.1")
    assert allowed.status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("hops", "forwarded_for", "throttled_together"),
    [
        # Behind one proxy every request comes from the proxy's address: the throttle
        # tells clients apart by the entry the proxy appended, whatever they prepend.
        (1, ["1.1.1.1, 203.0.113.9", "2.2.2.2, 203.0.113.9"], True),
        (1, ["203.0.113.9", "198.51.100.1"], False),
        # With no trusted proxy the header is anyone's to send: ignored.
        (0, ["203.0.113.9", "198.51.100.1"], True),
    ],
)
def test_sign_in__behind_proxies__throttles_the_client_address(
    client, password, monkeypatch, settings, hops, forwarded_for, throttled_together
):
    settings.SIGNIN_THROTTLE_SOFT = 2
    settings.TRUSTED_PROXY_HOPS = hops
    Clock(monkeypatch)
    first, second = forwarded_for
    for _ in range(throttle.ADDRESS_LENIENCY * 2):
        client.post(
            reverse("tenants:login"),
            {"username": UserFactory().email, "password": "guess"},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=first,
        )

    someone = UserFactory()
    response = client.post(
        reverse("tenants:login"),
        {"username": someone.email, "password": password},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR=second,
    )
    refused = "Too many failed sign-in attempts" in response.content.decode()
    assert refused == throttled_together


@pytest.mark.django_db
def test_password_reset__known_email__sends_working_link(client, mailoutbox):
    user = UserFactory(email="forgot@example.com")
    client.post(reverse("tenants:password_reset"), {"email": "forgot@example.com"})

    assert len(mailoutbox) == 1
    link = next(w for w in mailoutbox[0].body.split() if "/reset/" in w)
    path = link.split("://", 1)[1].split("/", 1)[1]
    response = client.get("/" + path, follow=True)
    new = "a brand new passphrase 77"
    response = client.post(
        response.redirect_chain[-1][0], {"new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)


@pytest.mark.django_db
def test_sign_out__post__signs_out(client, member):
    client.force_login(member.user)
    client.post(reverse("tenants:logout"))
    assert "_auth_user_id" not in client.session
