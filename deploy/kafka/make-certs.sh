#!/bin/sh
# A throwaway certificate authority and a broker keystore signed by it, made with Java's keytool only (the
# apache/kafka image has it; so does any JDK). Used by docker-compose.yml (the `certs` service) and by the
# integration tests. Idempotent: an existing keystore in OUT is kept.
#
#   make-certs.sh OUT        writes OUT/ca.crt (PEM, what clients trust: FORYOU_KAFKA_SSL_CAFILE) and
#                            OUT/broker.p12 (PKCS12: the broker's key, its certificate and the CA)
# Environment: KEYSTORE_PASSWORD (required), BROKER_SANS (default dns:kafka,dns:localhost,ip:127.0.0.1),
# VALIDITY_DAYS (default 30). The CA's private key lives only in OUT/ca.p12 and can be deleted afterwards.
set -eu
OUT=${1:?usage: make-certs.sh OUT}
: "${KEYSTORE_PASSWORD:?KEYSTORE_PASSWORD must be set}"
SANS=${BROKER_SANS:-dns:kafka,dns:localhost,ip:127.0.0.1}
DAYS=${VALIDITY_DAYS:-30}
if [ -s "$OUT/broker.p12" ] && [ -s "$OUT/ca.crt" ]; then
  echo "make-certs: $OUT already holds a broker keystore"
  exit 0
fi
mkdir -p "$OUT"
umask 077
PASS="-storepass $KEYSTORE_PASSWORD -storetype PKCS12"
rm -f "$OUT/ca.p12" "$OUT/broker.p12" "$OUT/broker.csr" "$OUT/broker.crt" "$OUT/ca.crt"
# shellcheck disable=SC2086  # $PASS is two options
keytool -genkeypair -alias ca -keyalg EC -groupname secp256r1 -dname "CN=foryou throwaway CA" \
  -ext bc:c=ca:true -ext ku:c=keyCertSign,cRLSign -validity "$DAYS" -keystore "$OUT/ca.p12" $PASS
# shellcheck disable=SC2086
keytool -exportcert -rfc -alias ca -keystore "$OUT/ca.p12" $PASS -file "$OUT/ca.crt"
# shellcheck disable=SC2086
keytool -genkeypair -alias broker -keyalg EC -groupname secp256r1 -dname "CN=kafka" -validity "$DAYS" \
  -keystore "$OUT/broker.p12" $PASS
# shellcheck disable=SC2086
keytool -certreq -alias broker -keystore "$OUT/broker.p12" $PASS -file "$OUT/broker.csr"
# shellcheck disable=SC2086
keytool -gencert -rfc -alias ca -keystore "$OUT/ca.p12" $PASS -infile "$OUT/broker.csr" \
  -outfile "$OUT/broker.crt" -validity "$DAYS" -ext "san=$SANS" \
  -ext ku:c=digitalSignature,keyAgreement -ext eku=serverAuth,clientAuth
# The chain: the CA first (trusted), then the broker's signed certificate replaces its self-signed one.
# shellcheck disable=SC2086
keytool -importcert -noprompt -alias ca -keystore "$OUT/broker.p12" $PASS -file "$OUT/ca.crt"
# shellcheck disable=SC2086
keytool -importcert -noprompt -alias broker -keystore "$OUT/broker.p12" $PASS -file "$OUT/broker.crt"
rm -f "$OUT/broker.csr" "$OUT/broker.crt"
chmod 644 "$OUT/ca.crt"
echo "make-certs: wrote $OUT/ca.crt and $OUT/broker.p12 (valid $DAYS days, $SANS)"
