# The explorer as one image: the API, the dashboard and the presets.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY backend ./backend
COPY frontend ./frontend
COPY models_db ./models_db
RUN pip install --no-cache-dir -e .
ENV DSE_DATABASE_URL=sqlite:////data/scenarios.sqlite3
EXPOSE 8000
CMD ["dse", "serve", "--host", "0.0.0.0", "--port", "8000"]
