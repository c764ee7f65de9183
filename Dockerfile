FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY notiflow ./notiflow
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY migrations ./migrations
RUN pip install --no-cache-dir .
USER nobody
