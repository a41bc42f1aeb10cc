#!/bin/sh
# Everything the SASL_SSL broker of docker-compose.yml reads from /etc/kafka/secrets (the `certs` service
# runs this once into a shared volume): the throwaway CA and keystore (make-certs.sh), the files holding
# the keystore password (the apache/kafka image reads them), the broker's JAAS file (PLAIN users: the admin,
# which the broker also uses to reach its own controller) and admin.properties for the admin tools.
#   broker-secrets.sh OUT [CA_OUT]   with KEYSTORE_PASSWORD and ADMIN_PASSWORD set; CA_OUT gets a copy of
#                                    the CA certificate alone (for the clients' volume)
set -eu
OUT=${1:?usage: broker-secrets.sh OUT}
: "${KEYSTORE_PASSWORD:?KEYSTORE_PASSWORD must be set}" "${ADMIN_PASSWORD:?ADMIN_PASSWORD must be set}"
sh "$(dirname "$0")/make-certs.sh" "$OUT"
rm -f "$OUT/ca.p12"  # the CA's key: nothing else will be signed with it
umask 077
printf '%s' "$KEYSTORE_PASSWORD" > "$OUT/keystore_creds"
cat > "$OUT/broker_jaas.conf" <<JAAS
KafkaServer {
  org.apache.kafka.common.security.plain.PlainLoginModule required
    username="admin" password="$ADMIN_PASSWORD" user_admin="$ADMIN_PASSWORD";
  org.apache.kafka.common.security.scram.ScramLoginModule required;
};
JAAS
cat > "$OUT/admin.properties" <<PROPERTIES
security.protocol=SASL_SSL
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$ADMIN_PASSWORD";
ssl.truststore.type=PEM
ssl.truststore.location=$OUT/ca.crt
PROPERTIES
# The broker runs as the image's appuser (uid 1000); clients need only the CA certificate.
chown -R "${SECRETS_OWNER:-1000:1000}" "$OUT" 2>/dev/null || true
chmod 644 "$OUT/ca.crt"
if [ -n "${2:-}" ]; then
  mkdir -p "$2" && chmod 755 "$2" && cp "$OUT/ca.crt" "$2/ca.crt" && chmod 644 "$2/ca.crt"
fi
echo "broker-secrets: wrote $OUT"
