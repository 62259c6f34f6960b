"""FairAudit: fairness auditing for LLM-based recommender systems.

The package is pure computation (data, models, metrics, statistics, explanations,
reports) and never imports Streamlit; the dashboard in ``app.py``/``pages/`` and the
command line (``python -m fairaudit``) both call it.
"""

__version__ = "0.1.0"
