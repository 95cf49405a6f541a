"""Test data. Tenant-owned rows are created inside the workspace's scope, as the app does."""

import factory
from django.utils import timezone

from connector.metrics.groups import group_body, group_fingerprint
from connector.metrics.models import GroupKind, MetricGroup
from tenants.models import Membership, Role, Tenant, User
from tenants.scope import current_tenant

TEST_PASSWORD = "a-long-test-password-42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", TEST_PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"workspace-{n}")
    created_at = factory.LazyFunction(timezone.now)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Role.MEMBER


class MetricGroupFactory(factory.django.DjangoModelFactory):
    """A metric group in the workspace in scope; `metrics` is [{"key", "nameInGroup"}]
    (see `members`). Its desired_hash follows its fields, as a plan's would."""

    class Meta:
        model = MetricGroup

    tenant = factory.LazyFunction(current_tenant)
    project_key = "default"
    key = factory.Sequence(lambda n: f"group-{n}")
    name = factory.LazyAttribute(lambda group: group.key.replace("-", " ").capitalize())
    kind = GroupKind.FUNNEL
    metrics = factory.LazyFunction(list)
    desired_hash = ""

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        group = model_class(*args, **kwargs)
        group.desired_hash = group.desired_hash or group_fingerprint(group_body(group))
        group.save()
        return group

    @staticmethod
    def members(mappings, *, kind=GroupKind.FUNNEL):
        """`metrics` for these mappings: a funnel names each step, a standard group
        leaves `nameInGroup` empty (LaunchDarkly's rule, contract GRP-7)."""
        return [
            {"key": m.metric_key, "nameInGroup": m.name if kind == GroupKind.FUNNEL else ""}
            for m in mappings
        ]
