"""Tests of the compose deployment (docker-compose.yml, its images and example traffic)."""
