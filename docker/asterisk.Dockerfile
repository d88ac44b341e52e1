# Asterisk 22 from Debian sid (bookworm has no asterisk package), with the project's configuration.
# It starts as root only to write the AMI secret into manager.conf, then runs as the `asterisk` user
# (-U/-G), a member of the group that shares the /var/lib/ivr volume with the service.
FROM debian:sid-slim
RUN apt-get -o Acquire::Check-Valid-Until=false update \
 && apt-get install -y --no-install-recommends asterisk asterisk-core-sounds-en-wav \
      asterisk-core-sounds-it-wav asterisk-moh-opsound-wav \
 && ln -sfn it_IT_m_Carlo /usr/share/asterisk/sounds/it \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 ivr && usermod -aG ivr asterisk \
 && mkdir -p /var/lib/ivr/voicemail /var/lib/ivr/announcements /var/lib/ivr/prompts \
 && chown -R 10001:10001 /var/lib/ivr && chmod -R 2775 /var/lib/ivr
COPY asterisk-conf/ /etc/asterisk/
COPY docker/asterisk-entrypoint.sh /usr/local/bin/asterisk-entrypoint
RUN chown -R asterisk:asterisk /etc/asterisk /var/lib/asterisk /var/spool/asterisk /var/log/asterisk \
      /var/run/asterisk 2>/dev/null || true
ENTRYPOINT ["/usr/local/bin/asterisk-entrypoint"]
CMD ["asterisk", "-f", "-U", "asterisk", "-G", "asterisk"]
