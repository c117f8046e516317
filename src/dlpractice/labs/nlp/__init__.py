"""Track N: NLP with Transformers and Hugging Face."""
