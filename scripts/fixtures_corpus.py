"""Fixed English text the fixture tokenizer is trained on (scripts/make_fixtures.py).

Written for this project; changing it changes every fixture tokenizer, so regenerate all fixtures.
"""

CORPUS = """\
The river ran quietly past the old mill, and the children who lived in the village would sit on the
stone wall every evening to watch the water turn gold under the setting sun. Their grandmother told them
that the mill had once ground flour for the whole valley, and that the miller had been the richest man
for twenty miles around. Nobody believed her, but everybody liked to hear the story again.

In the morning the market opened early. Farmers brought eggs, cheese, apples and bread; a woman from the
hills sold honey in small glass jars, and a boy with a red cap sold newspapers that were already a day
old. The baker shouted the price of his loaves, the fishmonger shouted louder, and the church bell rang
eight times over all of them.

A good question is worth more than a quick answer. When you read a passage, ask what it says, what it
does not say, and what the writer wanted you to believe. Then read it again. Most mistakes come from
reading too fast, not from thinking too slowly.

Question: What is the capital of France? Answer: The capital of France is Paris.
Question: How many days are there in a week? Answer: There are seven days in a week.
Question: Which planet is closest to the sun? Answer: Mercury is the planet closest to the sun.
Question: What do bees make? Answer: Bees make honey and wax.

The system prompt says: you are a helpful assistant. Answer the user's question using only the documents
below. If the documents do not contain the answer, say that you do not know. Keep the answer short and
cite the document you used.

Document 1: The train leaves the station at seven in the morning and arrives in the city at noon.
Document 2: The museum is closed on Mondays; on other days it opens at nine and closes at five.
Document 3: Tickets for children under twelve are half price, and students pay a reduced fare.

She opened the window, and the cold air of the winter night came into the room. Somewhere far away a dog
was barking, and the snow on the roofs shone under the moon. He was still writing at the table, with a
small lamp beside him and a cup of tea that had gone cold an hour ago. "Come to bed," she said. "The
letter can wait until tomorrow." But he shook his head and kept writing, because he knew that if he
stopped now he would never find the words again.

Numbers and dates appear in every kind of text: 1, 2, 3, 10, 42, 100, 2024, 3.14, the 1st of May, the
25th of December, at 10:30 in the morning. Lists are common too: first, second, third; north, south,
east and west; spring, summer, autumn and winter.

The engine reads the model, loads the weights, encodes each context once, and lets the query attend to
all of them. Parallel encoding saves time, but the attention has to be aligned again: a shared prefix,
a temperature and a scale bring the result close to what sequential encoding would give.
"""
