# Turns conf/astleyd.conf into the packaged /etc/astleyd/astleyd.conf
# (debian/rules runs it; tests/integration/test_deb.py checks the result).
s|^user\([[:space:]]*\).*|user\1astleyd|
s|^group\([[:space:]]*\).*|group\1astleyd|
s|^pidfile\([[:space:]]*\).*|pidfile\1/run/astleyd.pid|
s|^tls_certificate\([[:space:]]*\)[^[:space:]]*$|tls_certificate\1/etc/astleyd/cert.pem|
s|^tls_certificate_key\([[:space:]]*\).*|tls_certificate_key\1/etc/astleyd/key.pem|
s|^access_log\([[:space:]]*\).*|access_log\1/var/log/astleyd/access.log|
s|"make install" sets that here\.|the package sets it here.|
s|Required\.  "make run" creates$|Required.  On first install the|
s|^# a self-signed development pair here with scripts/gen-cert\.|# package made a self-signed pair for localhost here (with\
# /usr/share/astleyd/gen-cert) if none existed; replace it with a real\
# certificate and key, then reload astleyd.|
