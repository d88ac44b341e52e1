# The ivr service (FastAGI + AMI + HTTP). Asterisk and Redis run beside it: see docker-compose.yml.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng libespeak-ng1 sox \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/ivr
COPY pyproject.toml README.md ./
COPY ivr ./ivr
RUN pip install --no-cache-dir .

COPY dialplans ./dialplans
COPY prompts ./prompts
COPY docker/ivr.toml ./ivr.toml

# Rendered prompts go to a volume that Asterisk mounts at the same path, so it can play them.
VOLUME ["/var/lib/ivr"]
RUN useradd --system --home /srv/ivr ivr && mkdir -p /var/lib/ivr && chown ivr /var/lib/ivr
USER ivr
EXPOSE 4573 8080
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health')"
CMD ["ivr", "--config", "/srv/ivr/ivr.toml", "serve"]
