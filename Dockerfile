# The ivr service (FastAGI + AMI + HTTP); the same image runs the demo's reference backend and SMS sink.
# Asterisk and Redis run beside it: see docker-compose.yml.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng libespeak-ng1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/ivr
COPY pyproject.toml README.md LICENSE requirements-service.lock ./
RUN pip install --no-cache-dir -r requirements-service.lock
COPY ivr ./ivr
RUN pip install --no-cache-dir --no-deps '.[demo]'

COPY dialplans ./dialplans
COPY prompts ./prompts
COPY docker/ivr.toml ./ivr.toml

# /var/lib/ivr is shared with Asterisk (same path in both containers): the service renders prompts there,
# Asterisk records voicemail and ops announcements there. Both belong to group 10001 (see
# docker/asterisk.Dockerfile); the setgid dirs keep new files in it.
RUN groupadd --gid 10001 ivr && useradd --system --uid 10001 --gid 10001 --home /srv/ivr ivr \
 && mkdir -p /var/lib/ivr/voicemail /var/lib/ivr/announcements /var/lib/ivr/prompts \
 && chown -R 10001:10001 /var/lib/ivr && chmod -R 2775 /var/lib/ivr
VOLUME ["/var/lib/ivr"]
USER ivr
EXPOSE 4573 8080
HEALTHCHECK --interval=10s --timeout=3s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2)"
CMD ["ivr", "--config", "/srv/ivr/ivr.toml", "serve"]
