"""The campaign body every bench job carries (gen.py and rqbench.py): one template, so
both sides of a comparison send the same bytes."""
TEXT = ("Hi {{ first_name }},\n\nI noticed {{ company }} is growing its finance team and thought a "
        "short note might be useful. We help teams like yours close the books two days faster "
        "without changing the tools they already use.\n\nWould a 15-minute call next week be "
        "worth it?\n\nBest,\nAnna\n")
HTML = ("<p>Hi {{ first_name }},</p><p>I noticed <b>{{ company }}</b> is growing its finance team "
        "and thought a short note might be useful. We help teams like yours close the books two "
        "days faster without changing the tools they already use.</p><p>Would a 15-minute call "
        "next week be worth it?</p><p>Best,<br>Anna</p>")
