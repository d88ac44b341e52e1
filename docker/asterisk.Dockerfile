# Asterisk 22 from Debian sid (bookworm has no asterisk package), with the project's configuration.
FROM debian:sid-slim
RUN apt-get -o Acquire::Check-Valid-Until=false update \
 && apt-get install -y --no-install-recommends asterisk asterisk-core-sounds-en-wav \
      asterisk-core-sounds-it-wav asterisk-moh-opsound-wav \
 && ln -sfn it_IT_m_Carlo /usr/share/asterisk/sounds/it \
 && rm -rf /var/lib/apt/lists/*
COPY asterisk-conf/ /etc/asterisk/
CMD ["asterisk", "-f"]
