"""Evaluation of a served policy (``mtgrpo eval``).

outcomes: what an episode's end counts as (scored / infrastructure); policy_client: the
served policy's endpoint; chat_episode: one episode over the chat API; run_store: the
output folder, its run identity and resume; passk: pass^k over complete tasks with
bootstrap intervals; report: the printed table and summary lines.
"""
