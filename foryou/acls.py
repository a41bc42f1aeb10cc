"""Who may do what on the broker: the ACLs of a foryou deployment, as one declared list.

With the StandardAuthorizer and `allow.everyone.if.no.acl.found=false`, a principal can do only what an ACL
allows. Workers own the internal topics (`<app>-*`: user events, post log, changelogs, Faust's assignor
topic) and are the only writers of the output topics; clients produce the public input topics and read
answers. `foryou security acls` prints these as `kafka-acls` commands or applies them with the admin API;
README "Security" lists them.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from foryou.settings import KafkaSecurity, librdkafka_config
from topics.specs import (
    DEAD_LETTERS,
    ENGAGEMENT_EVENTS,
    FEED_REQUESTS,
    IMPRESSIONS,
    RANKED_FEEDS,
    SOCIAL_GRAPH_EVENTS,
    TWEET_EVENTS,
)

PUBLIC_INPUTS = (TWEET_EVENTS, ENGAGEMENT_EVENTS, SOCIAL_GRAPH_EVENTS, FEED_REQUESTS)
WORKER_OUTPUTS = (RANKED_FEEDS, IMPRESSIONS, DEAD_LETTERS)
# FeedClient's answer reader uses a throwaway consumer group `<client_id>-<uuid>`; its default client id:
CLIENT_GROUP_PREFIX = "foryou-client"


@dataclass(frozen=True)
class Acl:
    """One ALLOW rule: `principal` may `operation` on the `resource` ("topic" or "group") named `name`
    (exactly, or every name starting with it when `prefixed`), from any host."""

    principal: str
    operation: str  # a Kafka operation name: "All", "Read", "Write", ...
    resource: str
    name: str
    prefixed: bool = False

    def kafka_acls_command(self, bootstrap: str = "$BOOTSTRAP", command_config: str = "admin.properties") -> str:
        pattern = " --resource-pattern-type prefixed" if self.prefixed else ""
        return (
            f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config {command_config} --add "
            f"--allow-principal {self.principal} --operation {self.operation} --{self.resource} {self.name}{pattern}"
        )


def acl_plan(app_id: str, worker: str = "User:worker", client: str = "User:client") -> list[Acl]:
    """The ACLs of one app id's workers and of the clients that use it."""
    return [
        # Internal topics: created, written and read by the workers alone.
        Acl(worker, "All", "topic", f"{app_id}-", prefixed=True),
        Acl(worker, "Read", "group", app_id),
        *(Acl(worker, "Read", "topic", topic) for topic in PUBLIC_INPUTS),
        *(Acl(worker, "Write", "topic", topic) for topic in WORKER_OUTPUTS),
        # `foryou trainer` runs as the worker principal: it reads what workers serve, in its own groups; every
        # worker's engagement counts read the impressions too (agents.counts_replica).
        Acl(worker, "Read", "topic", IMPRESSIONS),
        Acl(worker, "Read", "group", f"{app_id}-trainer", prefixed=True),
        *(Acl(client, "Write", "topic", topic) for topic in PUBLIC_INPUTS),
        Acl(client, "Read", "topic", RANKED_FEEDS),
        Acl(client, "Read", "group", CLIENT_GROUP_PREFIX, prefixed=True),
    ]


def apply_acls(plan: Iterable[Acl], bootstrap: str, security: KafkaSecurity | None = None,
               timeout_s: float = 30.0) -> int:
    """Create the ACLs (idempotent: an existing binding is kept); needs a principal allowed to alter the
    cluster's ACLs (the super user). Returns how many bindings were sent."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    bindings = [
        AclBinding(
            ResourceType[acl.resource.upper()], acl.name,
            ResourcePatternType.PREFIXED if acl.prefixed else ResourcePatternType.LITERAL,
            acl.principal, "*", AclOperation[acl.operation.upper()], AclPermissionType.ALLOW,
        )
        for acl in dict.fromkeys(plan)  # the same rule twice (two plans merged) is sent once
    ]
    admin = AdminClient(librdkafka_config(bootstrap, security, {"log_level": 3}))
    for future in admin.create_acls(bindings, request_timeout=timeout_s).values():
        future.result()
    return len(bindings)


def upsert_scram_user(name: str, password: str, bootstrap: str, security: KafkaSecurity | None = None,
                      iterations: int = 8192) -> None:
    """Create or change a SCRAM-SHA-512 user (the broker stores a salted hash, never the password)."""
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    if not name or not password:
        raise ValueError("a SCRAM user needs a name and a non-empty password")
    admin = AdminClient(librdkafka_config(bootstrap, security, {"log_level": 3}))
    upsertion = UserScramCredentialUpsertion(
        name, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, iterations), password.encode()
    )
    for future in admin.alter_user_scram_credentials([upsertion]).values():
        future.result()
